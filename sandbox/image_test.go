package sandbox_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentkeys/harness/sandbox"
)

// TestImageTag checks that the tag follows the content and nothing else.
func TestImageTag(t *testing.T) {
	t.Parallel()
	file := writeHostFile(t, "content")
	base := func() sandbox.ImageSpec {
		return sandbox.ImageSpec{
			Repository: "agentkeys-harness/tag-test",
			Files: map[string]sandbox.ImageFile{
				"/bin/prog": {HostPath: file, Mode: 0o755},
				"/data":     {Mode: 0o700, UID: 1000, GID: 1000},
			},
			Entrypoint: []string{"/bin/prog"},
			User:       "1000:1000",
		}
	}
	baseTag, err := sandbox.ImageTag(base())
	require.NoError(t, err)
	assert.Regexp(t, `^agentkeys-harness/tag-test:[0-9a-f]{16}$`, baseTag)

	same, err := sandbox.ImageTag(base())
	require.NoError(t, err)
	assert.Equal(t, baseTag, same, "an unchanged spec keeps its tag")

	changes := []struct {
		name   string
		change func(s *sandbox.ImageSpec)
	}{
		{"file mode", func(s *sandbox.ImageSpec) {
			s.Files["/bin/prog"] = sandbox.ImageFile{HostPath: file, Mode: 0o700}
		}},
		{"file bytes", func(s *sandbox.ImageSpec) {
			s.Files["/bin/prog"] = sandbox.ImageFile{HostPath: writeHostFile(t, "other"),
				Mode: 0o755}
		}},
		{"owner", func(s *sandbox.ImageSpec) {
			s.Files["/data"] = sandbox.ImageFile{Mode: 0o700, UID: 1001, GID: 1000}
		}},
		{"destination", func(s *sandbox.ImageSpec) {
			s.Files["/bin/prog2"] = s.Files["/bin/prog"]
			delete(s.Files, "/bin/prog")
		}},
		{"label", func(s *sandbox.ImageSpec) { s.Labels = map[string]string{"k": "v"} }},
		{"env", func(s *sandbox.ImageSpec) { s.Env = map[string]string{"K": "v"} }},
		{"entrypoint", func(s *sandbox.ImageSpec) { s.Entrypoint = []string{"/bin/other"} }},
	}
	for _, tc := range changes {
		t.Run(tc.name, func(t *testing.T) {
			spec := base()
			tc.change(&spec)
			tag, err := sandbox.ImageTag(spec)
			require.NoError(t, err)
			assert.NotEqual(t, baseTag, tag)
		})
	}
}

// TestImageSpecRefused checks the mistakes BuildImage catches before it talks to Docker.
func TestImageSpecRefused(t *testing.T) {
	t.Parallel()
	file := writeHostFile(t, "content")
	cases := []struct {
		name string
		spec sandbox.ImageSpec
		want string
	}{
		{"no repository", sandbox.ImageSpec{}, "repository"},
		{"upper case repository", sandbox.ImageSpec{Repository: "Harness/x"}, "repository"},
		{"user by name", sandbox.ImageSpec{Repository: "h/x", User: "agent"}, "numeric"},
		{"relative destination", sandbox.ImageSpec{Repository: "h/x",
			Files: map[string]sandbox.ImageFile{"bin/x": {HostPath: file}}}, "absolute"},
		{"unclean destination", sandbox.ImageSpec{Repository: "h/x",
			Files: map[string]sandbox.ImageFile{"/bin/../x": {HostPath: file}}}, "clean"},
		{"missing host file", sandbox.ImageSpec{Repository: "h/x",
			Files: map[string]sandbox.ImageFile{"/x": {HostPath: file + ".missing"}}},
			"no such file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sandbox.BuildImage(context.Background(), tc.spec)
			assert.ErrorContains(t, err, tc.want)
		})
	}
}

// TestBuildImageCached builds an image of fresh content, then builds it again unchanged: the
// second build must find the image and build nothing.
func TestBuildImageCached(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	requireDocker(t)
	bins := testBinaries(t)

	// Fresh content, so the first build is a real one on every run.
	nonce := make([]byte, 8)
	_, _ = rand.Read(nonce)
	spec := sandbox.ImageSpec{
		Repository: testRepository + "-cache",
		Files: map[string]sandbox.ImageFile{
			"/sbin/init":  {HostPath: bins["sandbox-init"], Mode: 0o755},
			"/etc/nonce":  {HostPath: writeHostFile(t, hex.EncodeToString(nonce)), Mode: 0o644},
			"/var/tmp":    {Mode: os.ModeSticky | 0o777},
			"/data":       {Mode: 0o750, UID: 1000, GID: 1000},
			"/data/ready": {HostPath: writeHostFile(t, "ok"), Mode: 0o640, UID: 1000, GID: 1000},
		},
		Entrypoint:   []string{"/sbin/init"},
		User:         "1000:1000",
		Env:          map[string]string{"HARNESS_TEST": "yes"},
		WorkDir:      "/data",
		ExposedPorts: []string{"9000/tcp"},
		Labels:       map[string]string{"agentkeys.harness.test": "cache"},
	}

	var logs bytes.Buffer
	spec.Logger = slog.New(slog.NewTextHandler(&logs, nil))

	start := time.Now()
	tag, err := sandbox.BuildImage(ctx, spec)
	cold := time.Since(start)
	cli, cliErr := sandbox.DockerClient(ctx)
	require.NoError(t, cliErr)
	if err == nil {
		t.Cleanup(func() {
			_, err := cli.ImageRemove(context.Background(), tag, image.RemoveOptions{Force: true})
			assert.NoError(t, err)
		})
	}
	require.NoError(t, err)
	require.Contains(t, logs.String(), "image built")

	logs.Reset()
	start = time.Now()
	again, err := sandbox.BuildImage(ctx, spec)
	warm := time.Since(start)
	require.NoError(t, err)
	assert.Equal(t, tag, again)
	assert.Contains(t, logs.String(), "image cached")
	assert.NotContains(t, logs.String(), "image built")
	t.Logf("image build: cold %s, warm %s", cold.Round(time.Millisecond),
		warm.Round(time.Millisecond))

	t.Run("image config", func(t *testing.T) {
		inspect, err := cli.ImageInspect(ctx, tag)
		require.NoError(t, err)
		cfg := inspect.Config
		assert.Equal(t, "1000:1000", cfg.User)
		assert.Equal(t, "/data", cfg.WorkingDir)
		assert.Equal(t, []string{"/sbin/init"}, cfg.Entrypoint)
		assert.Contains(t, cfg.Env, "HARNESS_TEST=yes")
		assert.Contains(t, cfg.ExposedPorts, "9000/tcp")
		assert.Equal(t, "1", cfg.Labels[sandbox.LabelHarness])
		assert.Equal(t, "cache", cfg.Labels["agentkeys.harness.test"])
	})

	t.Run("modes and owners", func(t *testing.T) {
		// The image's own user, since /data is closed to anyone else.
		sb := newContainer(t, sandbox.WithImage(tag), sandbox.WithName("layout"),
			sandbox.WithUser(1000, 1000),
			sandbox.WithBinaries(map[string]string{"probe": bins["probe"]}))
		want := map[string]string{
			"/etc/nonce":  "0644 0:0",
			"/sbin/init":  "0755 0:0",
			"/var/tmp":    "1777 0:0",
			"/data":       "0750 1000:1000",
			"/data/ready": "0640 1000:1000",
		}
		for path, mode := range want {
			res, err := sb.Exec(ctx, []string{"probe", "stat", path})
			require.NoError(t, err)
			assert.Equal(t, mode, strings.TrimSpace(res.Stdout), "%s: %s", path, res.Stderr)
		}
	})
}

// TestBuildBinaries checks the names and the static linking of what it builds.
func TestBuildBinaries(t *testing.T) {
	t.Parallel()
	bins := testBinaries(t)
	root := moduleRoot(t)
	for _, name := range []string{"sandbox-init", "probe"} {
		path := bins[name]
		assert.Equal(t, filepath.Join(sandbox.BinCacheDir(root), name), path)
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		// An ELF without a PT_INTERP program header needs no dynamic loader.
		assert.False(t, bytes.Contains(b, []byte("/lib64/ld-linux")), "%s is dynamic", name)
		assert.Equal(t, []byte("\x7fELF"), b[:4], fmt.Sprintf("%s is not an ELF file", name))
	}

	_, err := sandbox.BuildBinaries(context.Background(), root, t.TempDir(), "no-such-program")
	assert.Error(t, err)
}
