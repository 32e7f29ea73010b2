// Package sandbox gives each agent of the isolation tests a place of its own to live in and
// the means to act there: run the harness's programs, put files in its HOME, and show what it
// did when a test fails.
//
// A Sandbox comes from one of two backends. The process backend (NewProcess) is a host
// directory with a private HOME; programs run as child processes with an environment built
// from nothing. The container backend (NewContainer) is a Docker container started through
// testcontainers-go: non-root, read-only root file system, no capabilities, HOME on a tmpfs.
// The tests hold both to the same assertions.
//
// Nothing is pulled from a registry. BuildBinaries compiles the harness's programs as static
// linux binaries and BuildImage packs host files into FROM scratch images tagged by a hash of
// their content, so an unchanged tree builds nothing. The same builder serves the MinIO and
// mock-stack images.
//
// Every container, network and volume carries Labels: the harness mark, the run, the pid and
// the host of the process that made it. Ryuk, the testcontainers reaper, is turned off because
// its image cannot be pulled; Sweep removes what a killed run left behind instead.
package sandbox
