"""Container processes and images: the shim, start/stop/exec, logs, the image store."""
