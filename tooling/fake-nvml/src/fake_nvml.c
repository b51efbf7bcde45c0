/*
 * A fake libnvidia-ml.so for testing @llem/nvml without a GPU.
 *
 * It exports the NVML symbols @llem/nvml binds, with the exact signatures and struct layouts of
 * NVIDIA's nvml.h (x86-64 LP64), so the production koffi code is exercised for real: a wrong
 * offset, a wrong integer width or a wrong version constant shows up as a wrong value in a test.
 *
 * Behaviour is data-driven. At nvmlInit (when the init count goes from 0 to 1) the file named by
 * LLEM_FAKE_NVML_SCENARIO is (re)read, so one process can switch scenarios between
 * init/shutdown pairs even though a loaded library can never be unloaded in practice. The format
 * is one `key=value` per line, `#` starts a comment:
 *
 *   init_error=DRIVER_NOT_LOADED           nvmlInit fails with this code
 *   driver_version=550.54.15
 *   nvml_version=12.550.54.15
 *   cuda_driver_version=12040              as nvmlSystemGetCudaDriverVersion reports it
 *   device_count=2                         default: highest device index seen + 1
 *   error.<function>=NOT_SUPPORTED         that function fails with this code, on every device
 *   device.<i>.error.<function>=GPU_IS_LOST   ... only on device i
 *   device.<i>.name=NVIDIA H100 80GB HBM3
 *   device.<i>.uuid=GPU-...
 *   device.<i>.memory_total=85899345920    bytes
 *   device.<i>.memory_used=1048576         bytes
 *   device.<i>.memory_used_file=/tmp/x     re-read at every memory query: the bytes it holds are
 *                                          added to memory_used (missing or unreadable: 0), so a
 *                                          program can pose as one that takes GPU memory
 *   device.<i>.memory_reserved=0           bytes (v2 only; v1 free = total - used)
 *   device.<i>.power_mw=71000              nvmlDeviceGetPowerUsage (1 s average on Ampere+)
 *   device.<i>.instant_power_mw=72000      field NVML_FI_DEV_POWER_INSTANT; absent: not supported
 *   device.<i>.power_limit_mw=700000
 *   device.<i>.temperature_c=34
 *   device.<i>.util_gpu=0
 *   device.<i>.util_memory=0
 *   device.<i>.persistence_mode=1
 *   device.<i>.sm_clock_mhz=1980
 *   device.<i>.mem_clock_mhz=2619
 *   device.<i>.clock_event_reasons=1       bitmask
 *   device.<i>.energy_mj=123456            counter start; absent: not supported (pre-Volta)
 *   device.<i>.process=4242:524288000      pid:usedBytes (or pid:na), one line per process
 *
 * The energy counter advances with real (monotonic) time at the instant power (else the average
 * power) from the moment the scenario was read.
 *
 * When LLEM_FAKE_NVML_TRACE names a file, every exported function appends its name as one line,
 * so tests can prove that nvmlShutdown really ran on the FFI path.
 *
 * Missing symbols: a symbol cannot be hidden from dlsym at run time, so scripts/build.mjs builds
 * a second library, build/legacy/libnvidia-ml.so.1, with -DFAKE_NVML_LEGACY. That variant
 * behaves like an old driver: it omits every newer entry point guarded by `#ifndef
 * FAKE_NVML_LEGACY` below (the _v2/_v3 variants, field values, the energy counter and
 * ClocksEventReasons), and only the old names remain.
 */

#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EXPORT __attribute__((visibility("default")))

typedef int nvmlReturn_t;

enum {
  NVML_SUCCESS = 0,
  NVML_ERROR_UNINITIALIZED = 1,
  NVML_ERROR_INVALID_ARGUMENT = 2,
  NVML_ERROR_NOT_SUPPORTED = 3,
  NVML_ERROR_NO_PERMISSION = 4,
  NVML_ERROR_ALREADY_INITIALIZED = 5,
  NVML_ERROR_NOT_FOUND = 6,
  NVML_ERROR_INSUFFICIENT_SIZE = 7,
  NVML_ERROR_INSUFFICIENT_POWER = 8,
  NVML_ERROR_DRIVER_NOT_LOADED = 9,
  NVML_ERROR_TIMEOUT = 10,
  NVML_ERROR_IRQ_ISSUE = 11,
  NVML_ERROR_LIBRARY_NOT_FOUND = 12,
  NVML_ERROR_FUNCTION_NOT_FOUND = 13,
  NVML_ERROR_CORRUPTED_INFOROM = 14,
  NVML_ERROR_GPU_IS_LOST = 15,
  NVML_ERROR_RESET_REQUIRED = 16,
  NVML_ERROR_OPERATING_SYSTEM = 17,
  NVML_ERROR_LIB_RM_VERSION_MISMATCH = 18,
  NVML_ERROR_IN_USE = 19,
  NVML_ERROR_MEMORY = 20,
  NVML_ERROR_NO_DATA = 21,
  NVML_ERROR_VGPU_ECC_NOT_SUPPORTED = 22,
  NVML_ERROR_INSUFFICIENT_RESOURCES = 23,
  NVML_ERROR_FREQ_NOT_SUPPORTED = 24,
  NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25,
  NVML_ERROR_DEPRECATED = 26,
  NVML_ERROR_NOT_READY = 27,
  NVML_ERROR_GPU_NOT_FOUND = 28,
  NVML_ERROR_INVALID_STATE = 29,
  NVML_ERROR_UNKNOWN = 999,
};

/* ---- nvml.h types, byte for byte ---- */

typedef struct {
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
} nvmlMemory_t; /* 24 bytes */

typedef struct {
  unsigned int version;
  unsigned long long total;
  unsigned long long reserved;
  unsigned long long free;
  unsigned long long used;
} nvmlMemory_v2_t; /* 40 bytes; version = sizeof | 2 << 24 */

#define NVML_STRUCT_VERSION(size, ver) ((unsigned int)(size) | ((unsigned int)(ver) << 24U))
#define nvmlMemory_v2 NVML_STRUCT_VERSION(sizeof(nvmlMemory_v2_t), 2)

typedef struct {
  unsigned int gpu;
  unsigned int memory;
} nvmlUtilization_t;

typedef union {
  double dVal;
  int siVal;
  unsigned int uiVal;
  unsigned long ulVal;
  unsigned long long ullVal;
  signed long long sllVal;
  unsigned short usVal;
} nvmlValue_t;

typedef struct {
  unsigned int fieldId;
  unsigned int scopeId;
  long long timestamp;
  long long latencyUsec;
  int valueType; /* nvmlValueType_t */
  nvmlReturn_t nvmlReturn;
  nvmlValue_t value;
} nvmlFieldValue_t; /* 40 bytes */

enum { NVML_VALUE_TYPE_UNSIGNED_INT = 1 };
enum { NVML_FI_DEV_POWER_AVERAGE = 185, NVML_FI_DEV_POWER_INSTANT = 186 };

typedef struct {
  unsigned int pid;
  unsigned long long usedGpuMemory;
} nvmlProcessInfo_v1_t; /* 16 bytes: plain nvmlDeviceGetComputeRunningProcesses */

typedef struct {
  unsigned int pid;
  unsigned long long usedGpuMemory;
  unsigned int gpuInstanceId;
  unsigned int computeInstanceId;
} nvmlProcessInfo_v2_t; /* 24 bytes: the _v2 and _v3 entry points */

/* ---- scenario state ---- */

#define MAX_DEVICES 16
#define MAX_PROCS 32
#define MAX_ERRORS 64
#define STR 96

typedef struct {
  char function[64];
  int device; /* -1: every device */
  nvmlReturn_t code;
} fake_error_t;

typedef struct {
  int index;
  char name[STR];
  char uuid[STR];
  unsigned long long mem_total, mem_used, mem_reserved;
  char mem_used_file[512];
  unsigned int power_mw, power_limit_mw, temperature_c, util_gpu, util_memory;
  long long instant_power_mw; /* -1: field not supported */
  unsigned int persistence, sm_clock, mem_clock;
  unsigned long long reasons;
  long long energy_mj; /* -1: counter not supported */
  unsigned int nprocs;
  unsigned int proc_pid[MAX_PROCS];
  unsigned long long proc_mem[MAX_PROCS];
} fake_device_t;

static int g_init_count = 0;
static nvmlReturn_t g_init_error = NVML_SUCCESS;
static char g_driver[STR], g_nvml[STR];
static int g_cuda = 0;
static unsigned int g_count = 0;
static fake_device_t g_dev[MAX_DEVICES];
static fake_error_t g_err[MAX_ERRORS];
static int g_nerr = 0;
static double g_t0 = 0;
static char g_trace[1024];

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void trace(const char *fn) {
  const char *path = g_init_count > 0 ? g_trace : getenv("LLEM_FAKE_NVML_TRACE");
  if (path == NULL || path[0] == '\0') return;
  FILE *f = fopen(path, "a");
  if (f == NULL) return;
  fputs(fn, f);
  fputc('\n', f);
  fclose(f);
}

static const struct {
  const char *name;
  nvmlReturn_t code;
} k_codes[] = {
    {"SUCCESS", 0},
    {"UNINITIALIZED", 1},
    {"INVALID_ARGUMENT", 2},
    {"NOT_SUPPORTED", 3},
    {"NO_PERMISSION", 4},
    {"ALREADY_INITIALIZED", 5},
    {"NOT_FOUND", 6},
    {"INSUFFICIENT_SIZE", 7},
    {"INSUFFICIENT_POWER", 8},
    {"DRIVER_NOT_LOADED", 9},
    {"TIMEOUT", 10},
    {"IRQ_ISSUE", 11},
    {"LIBRARY_NOT_FOUND", 12},
    {"FUNCTION_NOT_FOUND", 13},
    {"CORRUPTED_INFOROM", 14},
    {"GPU_IS_LOST", 15},
    {"RESET_REQUIRED", 16},
    {"OPERATING_SYSTEM", 17},
    {"LIB_RM_VERSION_MISMATCH", 18},
    {"IN_USE", 19},
    {"MEMORY", 20},
    {"NO_DATA", 21},
    {"VGPU_ECC_NOT_SUPPORTED", 22},
    {"INSUFFICIENT_RESOURCES", 23},
    {"FREQ_NOT_SUPPORTED", 24},
    {"ARGUMENT_VERSION_MISMATCH", 25},
    {"DEPRECATED", 26},
    {"NOT_READY", 27},
    {"GPU_NOT_FOUND", 28},
    {"INVALID_STATE", 29},
    {"UNKNOWN", 999},
};

static nvmlReturn_t parse_code(const char *s) {
  for (size_t i = 0; i < sizeof k_codes / sizeof k_codes[0]; i++) {
    if (strcmp(k_codes[i].name, s) == 0) return k_codes[i].code;
  }
  char *end = NULL;
  long v = strtol(s, &end, 10);
  if (end != s && *end == '\0') return (nvmlReturn_t)v;
  return NVML_ERROR_UNKNOWN;
}

static void copy_str(char *dst, const char *src) {
  strncpy(dst, src, STR - 1);
  dst[STR - 1] = '\0';
}

static void reset_scenario(void) {
  g_init_error = NVML_SUCCESS;
  copy_str(g_driver, "550.54.15");
  copy_str(g_nvml, "12.550.54.15");
  g_cuda = 12040;
  g_count = 0;
  g_nerr = 0;
  memset(g_dev, 0, sizeof g_dev);
  for (int i = 0; i < MAX_DEVICES; i++) {
    g_dev[i].index = i;
    snprintf(g_dev[i].name, STR, "Fake GPU %d", i);
    snprintf(g_dev[i].uuid, STR, "GPU-00000000-0000-0000-0000-%012d", i);
    g_dev[i].instant_power_mw = -1;
    g_dev[i].energy_mj = -1;
  }
}

static void add_error(const char *fn, int device, const char *code) {
  if (g_nerr >= MAX_ERRORS) return;
  strncpy(g_err[g_nerr].function, fn, sizeof g_err[g_nerr].function - 1);
  g_err[g_nerr].function[sizeof g_err[g_nerr].function - 1] = '\0';
  g_err[g_nerr].device = device;
  g_err[g_nerr].code = parse_code(code);
  g_nerr++;
}

static unsigned long long ull(const char *v) { return strtoull(v, NULL, 10); }

static void set_device_key(fake_device_t *d, const char *key, const char *v) {
  if (strcmp(key, "name") == 0) copy_str(d->name, v);
  else if (strcmp(key, "uuid") == 0) copy_str(d->uuid, v);
  else if (strcmp(key, "memory_total") == 0) d->mem_total = ull(v);
  else if (strcmp(key, "memory_used") == 0) d->mem_used = ull(v);
  else if (strcmp(key, "memory_used_file") == 0) {
    strncpy(d->mem_used_file, v, sizeof d->mem_used_file - 1);
    d->mem_used_file[sizeof d->mem_used_file - 1] = '\0';
  }
  else if (strcmp(key, "memory_reserved") == 0) d->mem_reserved = ull(v);
  else if (strcmp(key, "power_mw") == 0) d->power_mw = (unsigned int)ull(v);
  else if (strcmp(key, "instant_power_mw") == 0) d->instant_power_mw = (long long)ull(v);
  else if (strcmp(key, "power_limit_mw") == 0) d->power_limit_mw = (unsigned int)ull(v);
  else if (strcmp(key, "temperature_c") == 0) d->temperature_c = (unsigned int)ull(v);
  else if (strcmp(key, "util_gpu") == 0) d->util_gpu = (unsigned int)ull(v);
  else if (strcmp(key, "util_memory") == 0) d->util_memory = (unsigned int)ull(v);
  else if (strcmp(key, "persistence_mode") == 0) d->persistence = (unsigned int)ull(v);
  else if (strcmp(key, "sm_clock_mhz") == 0) d->sm_clock = (unsigned int)ull(v);
  else if (strcmp(key, "mem_clock_mhz") == 0) d->mem_clock = (unsigned int)ull(v);
  else if (strcmp(key, "clock_event_reasons") == 0) d->reasons = strtoull(v, NULL, 0);
  else if (strcmp(key, "energy_mj") == 0) d->energy_mj = (long long)ull(v);
  else if (strcmp(key, "process") == 0 && d->nprocs < MAX_PROCS) {
    const char *colon = strchr(v, ':');
    d->proc_pid[d->nprocs] = (unsigned int)ull(v);
    /* "na": NVML_VALUE_NOT_AVAILABLE, as drivers report for processes in other containers. */
    d->proc_mem[d->nprocs] = colon == NULL ? 0ULL : strcmp(colon + 1, "na") == 0 ? ~0ULL : ull(colon + 1);
    d->nprocs++;
  }
}

static void load_scenario(void) {
  reset_scenario();
  const char *trace_path = getenv("LLEM_FAKE_NVML_TRACE");
  strncpy(g_trace, trace_path ? trace_path : "", sizeof g_trace - 1);
  g_trace[sizeof g_trace - 1] = '\0';
  g_t0 = now_s();
  long explicit_count = -1;
  unsigned int highest = 0;
  const char *path = getenv("LLEM_FAKE_NVML_SCENARIO");
  FILE *f = path ? fopen(path, "r") : NULL;
  if (f != NULL) {
    char line[512];
    while (fgets(line, sizeof line, f) != NULL) {
      line[strcspn(line, "\r\n")] = '\0';
      if (line[0] == '#' || line[0] == '\0') continue;
      char *eq = strchr(line, '=');
      if (eq == NULL) continue;
      *eq = '\0';
      const char *key = line;
      const char *val = eq + 1;
      if (strcmp(key, "init_error") == 0) g_init_error = parse_code(val);
      else if (strcmp(key, "driver_version") == 0) copy_str(g_driver, val);
      else if (strcmp(key, "nvml_version") == 0) copy_str(g_nvml, val);
      else if (strcmp(key, "cuda_driver_version") == 0) g_cuda = (int)strtol(val, NULL, 10);
      else if (strcmp(key, "device_count") == 0) explicit_count = strtol(val, NULL, 10);
      else if (strncmp(key, "error.", 6) == 0) add_error(key + 6, -1, val);
      else if (strncmp(key, "device.", 7) == 0) {
        char *rest = NULL;
        long idx = strtol(key + 7, &rest, 10);
        if (idx < 0 || idx >= MAX_DEVICES || rest == NULL || *rest != '.') continue;
        if ((unsigned int)idx + 1 > highest) highest = (unsigned int)idx + 1;
        rest++;
        if (strncmp(rest, "error.", 6) == 0) add_error(rest + 6, (int)idx, val);
        else set_device_key(&g_dev[idx], rest, val);
      }
    }
    fclose(f);
  }
  g_count = explicit_count >= 0 ? (unsigned int)explicit_count : highest;
  if (g_count > MAX_DEVICES) g_count = MAX_DEVICES;
}

/* The configured error for this function (and device), or SUCCESS. */
static nvmlReturn_t injected(const char *fn, const fake_device_t *d) {
  for (int i = 0; i < g_nerr; i++) {
    if (strcmp(g_err[i].function, fn) != 0) continue;
    if (g_err[i].device == -1 || (d != NULL && g_err[i].device == d->index)) return g_err[i].code;
  }
  return NVML_SUCCESS;
}

/* Common prologue: trace, require init, validate the handle, apply an injected error. */
#define DEVICE_PROLOGUE(fn, handle)                                                  \
  trace(fn);                                                                        \
  if (g_init_count == 0) return NVML_ERROR_UNINITIALIZED;                           \
  fake_device_t *d = (fake_device_t *)(handle);                                     \
  if (d < g_dev || d >= g_dev + g_count) return NVML_ERROR_INVALID_ARGUMENT;         \
  do {                                                                              \
    nvmlReturn_t inj_ = injected(fn, d);                                            \
    if (inj_ != NVML_SUCCESS) return inj_;                                          \
  } while (0)

#define SYSTEM_PROLOGUE(fn)                                                         \
  trace(fn);                                                                        \
  if (g_init_count == 0) return NVML_ERROR_UNINITIALIZED;                           \
  do {                                                                              \
    nvmlReturn_t inj_ = injected(fn, NULL);                                         \
    if (inj_ != NVML_SUCCESS) return inj_;                                          \
  } while (0)

static nvmlReturn_t put_string(const char *src, char *dst, unsigned int length) {
  if (dst == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  size_t n = strlen(src);
  if (length < n + 1) return NVML_ERROR_INSUFFICIENT_SIZE;
  memcpy(dst, src, n + 1);
  return NVML_SUCCESS;
}

/* ---- init / shutdown / errors ---- */

static nvmlReturn_t do_init(const char *fn) {
  if (g_init_count == 0) load_scenario();
  trace(fn);
  if (g_init_error != NVML_SUCCESS) return g_init_error;
  g_init_count++;
  return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlInit(void) { return do_init("nvmlInit"); }
#ifndef FAKE_NVML_LEGACY
EXPORT nvmlReturn_t nvmlInit_v2(void) { return do_init("nvmlInit_v2"); }
EXPORT nvmlReturn_t nvmlInitWithFlags(unsigned int flags) {
  (void)flags;
  return do_init("nvmlInitWithFlags");
}
#endif

EXPORT nvmlReturn_t nvmlShutdown(void) {
  trace("nvmlShutdown");
  if (g_init_count == 0) return NVML_ERROR_UNINITIALIZED;
  nvmlReturn_t inj = injected("nvmlShutdown", NULL);
  g_init_count--;
  return inj;
}

EXPORT const char *nvmlErrorString(nvmlReturn_t result) {
  switch (result) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_NO_PERMISSION: return "Insufficient Permissions";
    case NVML_ERROR_ALREADY_INITIALIZED: return "Already Initialized";
    case NVML_ERROR_NOT_FOUND: return "Not Found";
    case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
    case NVML_ERROR_INSUFFICIENT_POWER: return "Insufficient External Power";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    case NVML_ERROR_TIMEOUT: return "Timeout";
    case NVML_ERROR_IRQ_ISSUE: return "Interrupt Request Issue";
    case NVML_ERROR_LIBRARY_NOT_FOUND: return "NVML Shared Library Not Found";
    case NVML_ERROR_FUNCTION_NOT_FOUND: return "Function Not Found";
    case NVML_ERROR_CORRUPTED_INFOROM: return "Corrupted infoROM";
    case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
    case NVML_ERROR_RESET_REQUIRED: return "GPU requires restart";
    case NVML_ERROR_OPERATING_SYSTEM: return "The operating system has blocked the request.";
    case NVML_ERROR_LIB_RM_VERSION_MISMATCH: return "RM has detected an NVML/RM version mismatch.";
    case NVML_ERROR_IN_USE: return "In use by another client";
    case NVML_ERROR_MEMORY: return "Insufficient Memory";
    case NVML_ERROR_NO_DATA: return "No data";
    case NVML_ERROR_ARGUMENT_VERSION_MISMATCH: return "Argument version mismatch";
    case NVML_ERROR_GPU_NOT_FOUND: return "GPU not found";
    case NVML_ERROR_INVALID_STATE: return "Invalid state";
    default: return "Unknown Error";
  }
}

/* ---- system ---- */

EXPORT nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length) {
  SYSTEM_PROLOGUE("nvmlSystemGetDriverVersion");
  return put_string(g_driver, version, length);
}

EXPORT nvmlReturn_t nvmlSystemGetNVMLVersion(char *version, unsigned int length) {
  SYSTEM_PROLOGUE("nvmlSystemGetNVMLVersion");
  return put_string(g_nvml, version, length);
}

static nvmlReturn_t cuda_version(const char *fn, int *v) {
  SYSTEM_PROLOGUE(fn);
  if (v == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  *v = g_cuda;
  return NVML_SUCCESS;
}
EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *v) {
  return cuda_version("nvmlSystemGetCudaDriverVersion", v);
}
#ifndef FAKE_NVML_LEGACY
EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *v) {
  return cuda_version("nvmlSystemGetCudaDriverVersion_v2", v);
}
#endif

static nvmlReturn_t device_count(const char *fn, unsigned int *count) {
  SYSTEM_PROLOGUE(fn);
  if (count == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  *count = g_count;
  return NVML_SUCCESS;
}
EXPORT nvmlReturn_t nvmlDeviceGetCount(unsigned int *c) { return device_count("nvmlDeviceGetCount", c); }
#ifndef FAKE_NVML_LEGACY
EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *c) {
  return device_count("nvmlDeviceGetCount_v2", c);
}
#endif

static nvmlReturn_t handle_by_index(const char *fn, unsigned int index, void **device) {
  SYSTEM_PROLOGUE(fn);
  if (device == NULL || index >= g_count) return NVML_ERROR_INVALID_ARGUMENT;
  nvmlReturn_t inj = injected(fn, &g_dev[index]);
  if (inj != NVML_SUCCESS) return inj;
  *device = &g_dev[index];
  return NVML_SUCCESS;
}
EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int i, void **d) {
  return handle_by_index("nvmlDeviceGetHandleByIndex", i, d);
}
#ifndef FAKE_NVML_LEGACY
EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int i, void **d) {
  return handle_by_index("nvmlDeviceGetHandleByIndex_v2", i, d);
}
#endif

/* ---- device ---- */

EXPORT nvmlReturn_t nvmlDeviceGetName(void *device, char *name, unsigned int length) {
  DEVICE_PROLOGUE("nvmlDeviceGetName", device);
  return put_string(d->name, name, length);
}

EXPORT nvmlReturn_t nvmlDeviceGetUUID(void *device, char *uuid, unsigned int length) {
  DEVICE_PROLOGUE("nvmlDeviceGetUUID", device);
  return put_string(d->uuid, uuid, length);
}

/* Memory in use: the scenario's, plus what a program wrote to memory_used_file (re-read each call). */
static unsigned long long used_bytes(const fake_device_t *d) {
  unsigned long long extra = 0;
  if (d->mem_used_file[0] != '\0') {
    FILE *f = fopen(d->mem_used_file, "r");
    if (f != NULL) {
      if (fscanf(f, "%llu", &extra) != 1) extra = 0;
      fclose(f);
    }
  }
  return d->mem_used + extra;
}

EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(void *device, nvmlMemory_t *memory) {
  DEVICE_PROLOGUE("nvmlDeviceGetMemoryInfo", device);
  if (memory == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  unsigned long long used = used_bytes(d);
  memory->total = d->mem_total;
  memory->used = used;
  memory->free = d->mem_total >= used ? d->mem_total - used : 0ULL;
  return NVML_SUCCESS;
}

#ifndef FAKE_NVML_LEGACY
EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(void *device, nvmlMemory_v2_t *memory) {
  DEVICE_PROLOGUE("nvmlDeviceGetMemoryInfo_v2", device);
  if (memory == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  /* The real driver rejects a struct whose version word does not match; so does the fake, which
   * is what catches a caller that forgot it or computed it from the wrong size. */
  if (memory->version != nvmlMemory_v2) return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
  unsigned long long used = used_bytes(d);
  unsigned long long taken = used + d->mem_reserved;
  memory->total = d->mem_total;
  memory->reserved = d->mem_reserved;
  memory->used = used;
  memory->free = d->mem_total >= taken ? d->mem_total - taken : 0ULL;
  return NVML_SUCCESS;
}
#endif

EXPORT nvmlReturn_t nvmlDeviceGetPowerUsage(void *device, unsigned int *power) {
  DEVICE_PROLOGUE("nvmlDeviceGetPowerUsage", device);
  if (power == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  *power = d->power_mw;
  return NVML_SUCCESS;
}

#ifndef FAKE_NVML_LEGACY
EXPORT nvmlReturn_t nvmlDeviceGetFieldValues(void *device, int valuesCount,
                                             nvmlFieldValue_t *values) {
  DEVICE_PROLOGUE("nvmlDeviceGetFieldValues", device);
  if (values == NULL || valuesCount < 0) return NVML_ERROR_INVALID_ARGUMENT;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  for (int i = 0; i < valuesCount; i++) {
    nvmlFieldValue_t *v = &values[i];
    v->timestamp = (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
    v->latencyUsec = 0;
    v->valueType = NVML_VALUE_TYPE_UNSIGNED_INT;
    v->value.ullVal = 0;
    if (v->fieldId == NVML_FI_DEV_POWER_INSTANT && d->instant_power_mw >= 0) {
      v->value.uiVal = (unsigned int)d->instant_power_mw;
      v->nvmlReturn = NVML_SUCCESS;
    } else if (v->fieldId == NVML_FI_DEV_POWER_AVERAGE) {
      v->value.uiVal = d->power_mw;
      v->nvmlReturn = NVML_SUCCESS;
    } else {
      v->nvmlReturn = NVML_ERROR_NOT_SUPPORTED;
    }
  }
  return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(void *device, unsigned long long *energy) {
  DEVICE_PROLOGUE("nvmlDeviceGetTotalEnergyConsumption", device);
  if (energy == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  if (d->energy_mj < 0) return NVML_ERROR_NOT_SUPPORTED;
  double mw = d->instant_power_mw >= 0 ? (double)d->instant_power_mw : (double)d->power_mw;
  /* mW × s = mJ */
  *energy = (unsigned long long)d->energy_mj + (unsigned long long)(mw * (now_s() - g_t0));
  return NVML_SUCCESS;
}
#endif

EXPORT nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(void *device, unsigned int *limit) {
  DEVICE_PROLOGUE("nvmlDeviceGetEnforcedPowerLimit", device);
  if (limit == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  *limit = d->power_limit_mw;
  return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetTemperature(void *device, int sensorType, unsigned int *temp) {
  DEVICE_PROLOGUE("nvmlDeviceGetTemperature", device);
  if (temp == NULL || sensorType != 0 /* NVML_TEMPERATURE_GPU */) return NVML_ERROR_INVALID_ARGUMENT;
  *temp = d->temperature_c;
  return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetUtilizationRates(void *device, nvmlUtilization_t *u) {
  DEVICE_PROLOGUE("nvmlDeviceGetUtilizationRates", device);
  if (u == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  u->gpu = d->util_gpu;
  u->memory = d->util_memory;
  return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetPersistenceMode(void *device, int *mode) {
  DEVICE_PROLOGUE("nvmlDeviceGetPersistenceMode", device);
  if (mode == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  *mode = d->persistence ? 1 : 0;
  return NVML_SUCCESS;
}

EXPORT nvmlReturn_t nvmlDeviceGetClockInfo(void *device, int type, unsigned int *clock) {
  DEVICE_PROLOGUE("nvmlDeviceGetClockInfo", device);
  if (clock == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  switch (type) {
    case 0: /* NVML_CLOCK_GRAPHICS */
    case 1: /* NVML_CLOCK_SM */ *clock = d->sm_clock; return NVML_SUCCESS;
    case 2: /* NVML_CLOCK_MEM */ *clock = d->mem_clock; return NVML_SUCCESS;
    default: return NVML_ERROR_INVALID_ARGUMENT;
  }
}

static nvmlReturn_t reasons(const char *fn, void *device, unsigned long long *out) {
  DEVICE_PROLOGUE(fn, device);
  if (out == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  *out = d->reasons;
  return NVML_SUCCESS;
}
EXPORT nvmlReturn_t nvmlDeviceGetCurrentClocksThrottleReasons(void *d, unsigned long long *r) {
  return reasons("nvmlDeviceGetCurrentClocksThrottleReasons", d, r);
}
#ifndef FAKE_NVML_LEGACY
EXPORT nvmlReturn_t nvmlDeviceGetCurrentClocksEventReasons(void *d, unsigned long long *r) {
  return reasons("nvmlDeviceGetCurrentClocksEventReasons", d, r);
}
#endif

/* NVML's count protocol: too small a buffer → INSUFFICIENT_SIZE with the needed count. */
#define PROCESSES_BODY(fn, info_t, has_instance_ids)                                 \
  DEVICE_PROLOGUE(fn, device);                                                      \
  if (infoCount == NULL) return NVML_ERROR_INVALID_ARGUMENT;                         \
  if (*infoCount < d->nprocs || (infos == NULL && d->nprocs > 0)) {                 \
    *infoCount = d->nprocs;                                                         \
    return NVML_ERROR_INSUFFICIENT_SIZE;                                            \
  }                                                                                 \
  for (unsigned int i = 0; i < d->nprocs; i++) {                                    \
    info_t *p = &((info_t *)infos)[i];                                              \
    memset(p, 0, sizeof *p);                                                        \
    p->pid = d->proc_pid[i];                                                        \
    p->usedGpuMemory = d->proc_mem[i];                                              \
    has_instance_ids                                                                \
  }                                                                                 \
  *infoCount = d->nprocs;                                                           \
  return NVML_SUCCESS

#define INSTANCE_IDS            \
  p->gpuInstanceId = 0xFFFFFFFFu; \
  p->computeInstanceId = 0xFFFFFFFFu;

EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses(void *device, unsigned int *infoCount,
                                                         nvmlProcessInfo_v1_t *infos) {
  PROCESSES_BODY("nvmlDeviceGetComputeRunningProcesses", nvmlProcessInfo_v1_t, );
}
EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v2(void *device, unsigned int *infoCount,
                                                            nvmlProcessInfo_v2_t *infos) {
  PROCESSES_BODY("nvmlDeviceGetComputeRunningProcesses_v2", nvmlProcessInfo_v2_t, INSTANCE_IDS);
}
#ifndef FAKE_NVML_LEGACY
EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(void *device, unsigned int *infoCount,
                                                            nvmlProcessInfo_v2_t *infos) {
  PROCESSES_BODY("nvmlDeviceGetComputeRunningProcesses_v3", nvmlProcessInfo_v2_t, INSTANCE_IDS);
}
#endif

/* Layout guards: a change here would silently break every caller, so fail the build instead. */
_Static_assert(sizeof(nvmlMemory_t) == 24, "nvmlMemory_t");
_Static_assert(sizeof(nvmlMemory_v2_t) == 40, "nvmlMemory_v2_t");
_Static_assert(sizeof(nvmlFieldValue_t) == 40, "nvmlFieldValue_t");
_Static_assert(sizeof(nvmlProcessInfo_v1_t) == 16, "nvmlProcessInfo_v1_t");
_Static_assert(sizeof(nvmlProcessInfo_v2_t) == 24, "nvmlProcessInfo_v2_t");
_Static_assert(sizeof(nvmlUtilization_t) == 8, "nvmlUtilization_t");
