// Command probe is the program the sandbox tests run inside a sandbox: each subcommand
// reports one fact about the place it runs in, so the tests can check the isolation the
// backends promise without any tool from the host.
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: probe <command> [args]")
		os.Exit(2)
	}

	if err := run(os.Args[1], os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		os.Exit(1)
	}
}

func run(cmd string, args []string) error {
	switch cmd {
	case "streams":
		// Interleave the two streams so that a backend which merges them is caught.
		fmt.Fprintln(os.Stdout, "out 1")
		fmt.Fprintln(os.Stderr, "err 1")
		fmt.Fprintln(os.Stdout, "out 2")
		fmt.Fprintln(os.Stderr, "err 2")
		return nil
	case "exit":
		code, err := strconv.Atoi(arg(args, 0))
		if err != nil {
			return fmt.Errorf("exit code: %w", err)
		}
		fmt.Fprintf(os.Stderr, "exiting with %d\n", code)
		os.Exit(code)
	case "id":
		home, _ := os.UserHomeDir()
		fmt.Printf("uid=%d gid=%d home=%s\n", os.Getuid(), os.Getgid(), home)
		return nil
	case "env":
		env := os.Environ()
		sort.Strings(env)
		fmt.Println(strings.Join(env, "\n"))
		return nil
	case "stdin":
		_, err := io.Copy(os.Stdout, os.Stdin)
		return err
	case "write":
		// write <path> <content>: an owner-only file, like the agent's key.
		return os.WriteFile(arg(args, 0), []byte(arg(args, 1)), 0o600)
	case "cat":
		b, err := os.ReadFile(arg(args, 0))
		if err != nil {
			return err
		}
		_, err = os.Stdout.Write(b)
		return err
	case "stat":
		// stat <path>: mode and owner, in the form "0600 65532:65532".
		fi, err := os.Stat(arg(args, 0))
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		fmt.Printf("%04o %d:%d\n", fi.Mode().Perm()|special(fi.Mode()), st.Uid, st.Gid)
		return nil
	case "lookup":
		addrs, err := net.LookupHost(arg(args, 0))
		if err != nil {
			return err
		}
		fmt.Println(strings.Join(addrs, " "))
		return nil
	}
	return fmt.Errorf("unknown command %q", cmd)
}

func special(m os.FileMode) os.FileMode {
	if m&os.ModeSticky != 0 {
		return 0o1000
	}
	return 0
}

func arg(args []string, i int) string {
	if i < len(args) {
		return args[i]
	}
	return ""
}
