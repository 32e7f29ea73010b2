package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
)

// buildMu keeps the test binary's own goroutines from building at once; the file lock in
// BuildBinaries does the same across the test binaries that `go test ./...` runs in parallel.
var buildMu sync.Mutex

// BuildBinaries compiles main packages into static linux binaries for the host's
// architecture and returns program name to binary path. A package is named either by its
// program name, meaning ./cmd/<name>, or by any package path with a slash in it, such as
// "./sandbox/testdata/probe"; the binary takes the last element of the path as its name.
// outDir defaults to <moduleRoot>/.cache/bin/linux-<arch>.
//
// The binaries are built with CGO_ENABLED=0 so that they run in a FROM scratch image, and with
// -trimpath so that they do not depend on where the module sits. go build leaves an
// up-to-date binary in place, so a second call is fast and does not rewrite a binary that a
// sandbox may be running.
func BuildBinaries(ctx context.Context, moduleRoot, outDir string, pkgs ...string) (
	map[string]string, error,
) {
	if len(pkgs) == 0 {
		return nil, errors.New("build binaries: no packages")
	}
	if outDir == "" {
		outDir = BinCacheDir(moduleRoot)
	}
	outDir, err := filepath.Abs(outDir)
	if err != nil {
		return nil, fmt.Errorf("build binaries: %w", err)
	}

	binaries := make(map[string]string, len(pkgs))
	args := []string{"build", "-trimpath", "-ldflags=-s -w", "-o", outDir + "/"}
	for _, pkg := range pkgs {
		name, pkgPath := pkg, "./cmd/"+pkg
		if strings.Contains(pkg, "/") {
			name, pkgPath = path.Base(pkg), pkg
		}
		if _, dup := binaries[name]; dup {
			return nil, fmt.Errorf("build binaries: two packages make %q", name)
		}
		binaries[name] = filepath.Join(outDir, name)
		args = append(args, pkgPath)
	}

	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, fmt.Errorf("build binaries: %w", err)
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	unlock, err := lockDir(outDir)
	if err != nil {
		return nil, fmt.Errorf("build binaries: %w", err)
	}
	defer unlock()

	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = moduleRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("build binaries: go build: %w\n%s", err, out.String())
	}
	return binaries, nil
}

// BinCacheDir is where BuildBinaries puts binaries by default. The directory is git-ignored.
func BinCacheDir(moduleRoot string) string {
	return filepath.Join(moduleRoot, ".cache", "bin", "linux-"+runtime.GOARCH)
}

// lockDir takes an exclusive lock on a file in dir, waiting for another process to let go.
func lockDir(dir string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return nil, errors.Join(fmt.Errorf("lock %s: %w", dir, err), f.Close())
	}
	return func() { _ = f.Close() }, nil
}

// FindModuleRoot walks up from dir to the nearest directory holding a go.mod.
func FindModuleRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("find module root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("find module root: no go.mod above the working directory")
		}
		dir = parent
	}
}
