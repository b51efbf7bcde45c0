// The baseline: an empty child that answers one IPC message and exits.
process.send?.({ ready: true });
process.disconnect?.();
