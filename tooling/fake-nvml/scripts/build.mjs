// Placeholder until the fake NVML C source lands: builds nothing.
console.log('fake-nvml: nothing to build yet');
