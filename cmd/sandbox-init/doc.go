// Command sandbox-init is the entrypoint of the harness sandbox image. A sandbox container
// exists only so that the tests can exec the agent's programs in it; its first process has
// nothing to do but stay alive, reap the orphans those programs may leave, and exit promptly
// when Docker stops the container.
//
// As process 1 of the container it gets no default signal handling from the kernel, so it
// must catch SIGTERM itself, or `docker stop` would wait out its timeout and kill it.
package main
