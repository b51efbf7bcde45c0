// The baseline: an empty child that sends one IPC message and exits.
process.send({ ready: true }, () => process.exit(0));
