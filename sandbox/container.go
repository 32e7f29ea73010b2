package sandbox

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/testcontainers/testcontainers-go"
)

// The layout of a container sandbox. The root file system is read-only; HOME, the bin
// directory for copied programs and /tmp are the only writable places.
const (
	// ContainerHome is the agent's HOME: a tmpfs owned by the agent, mode 0700.
	ContainerHome = "/home/agent"

	// ImageBinDir holds the programs baked into the harness sandbox image.
	ImageBinDir = "/usr/local/bin"

	// CopiedBinDir holds the programs copied in at start (WithBinaries, WithBinDir): a tmpfs
	// owned by root, so the agent can run them but not replace them.
	CopiedBinDir = "/opt/agentkeys/bin"

	// AgentUID and AgentGID are the default numeric user of a container sandbox.
	AgentUID = 65532
	AgentGID = 65532

	// EnvSandboxImage names a sandbox image the user brings instead of the harness's own.
	EnvSandboxImage = "HARNESS_SANDBOX_IMAGE"

	// SandboxRepository is the repository of the harness sandbox image.
	SandboxRepository = "agentkeys-harness/sandbox"
)

// containerPath is the PATH of every exec: copied programs first, so that what the harness
// copies in is what runs, then the image's own directories.
const containerPath = CopiedBinDir + ":" + ImageBinDir + ":/usr/bin:/bin"

// DefaultPrograms returns the harness programs the default sandbox image carries, sandbox-init
// first. sandbox-init is the entrypoint; it only waits to be stopped.
func DefaultPrograms() []string {
	return []string{"sandbox-init", "sandbox-agent", "isolation-probe"}
}

// Container is a sandbox in a Docker container started through testcontainers: non-root, read
// only root file system, every capability dropped, no-new-privileges. HOME and the copied bin
// directory are tmpfs-backed local volumes rather than plain tmpfs mounts, because the Docker
// API refuses to copy into a container whose root is read-only unless the target is a volume
// (and a copy into a plain tmpfs mount would land hidden underneath it anyway).
type Container struct {
	ctr      testcontainers.Container
	id       string
	cli      *client.Client
	uid, gid int
	copied   map[string]bool
	logger   *slog.Logger
	log      transcript

	closeOnce sync.Once
	closeErr  error
}

var _ Sandbox = (*Container)(nil)

// containerSeq keeps container names unique when one run starts two sandboxes of one name.
var containerSeq atomic.Int64

// NewContainer starts a container sandbox. The image is, in order: WithImage, the image named
// by HARNESS_SANDBOX_IMAGE, or the harness sandbox image, built from DefaultPrograms on
// demand. The programs of WithBinaries and WithBinDir are copied in at start; an image from
// HARNESS_SANDBOX_IMAGE without either gets DefaultPrograms but sandbox-init.
func NewContainer(ctx context.Context, opts ...Option) (*Container, error) {
	c := config{backend: backendContainer, name: "agent", uid: AgentUID, gid: AgentGID}
	for _, o := range opts {
		if err := o.applySandbox(&c); err != nil {
			return nil, fmt.Errorf("new container sandbox: %w", err)
		}
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	logger := c.logger.With("sandbox", c.name, "backend", backendContainer)

	cli, err := dockerClient(ctx)
	if err != nil {
		return nil, fmt.Errorf("new container sandbox: %w", err)
	}
	img, err := c.resolveImage(ctx, logger)
	if err != nil {
		return nil, fmt.Errorf("new container sandbox: %w", err)
	}
	programs, err := collectPrograms(c.binaries, c.binDir)
	if err != nil {
		return nil, fmt.Errorf("new container sandbox: %w", err)
	}

	start := time.Now()
	ctr, err := testcontainers.GenericContainer(ctx, c.request(img, len(programs) > 0, logger))
	s := &Container{
		ctr:    ctr,
		cli:    cli,
		uid:    c.uid,
		gid:    c.gid,
		copied: make(map[string]bool, len(programs)),
		logger: logger,
	}
	if err != nil {
		// A container that was created but did not start is still there to remove.
		return nil, errors.Join(fmt.Errorf("new container sandbox: %w", err), s.abandon(ctx))
	}
	s.id = ctr.GetContainerID()

	if err := s.copyPrograms(ctx, programs); err != nil {
		return nil, errors.Join(fmt.Errorf("new container sandbox: %w", err), s.abandon(ctx))
	}

	logger.Info("container started", "image", img, "id", shortID(s.id),
		"duration", time.Since(start).Round(time.Millisecond))
	return s, nil
}

// resolveImage picks the image and, for an image the harness did not build, the programs to
// copy into it.
func (c *config) resolveImage(ctx context.Context, logger *slog.Logger) (string, error) {
	if c.image != "" {
		return c.image, nil
	}

	ref := os.Getenv(EnvSandboxImage)
	if ref != "" && (len(c.binaries) > 0 || c.binDir != "") {
		return ref, nil
	}

	root := c.moduleRoot
	if root == "" {
		var err error
		if root, err = FindModuleRoot("."); err != nil {
			return "", fmt.Errorf("sandbox image: %w", err)
		}
	}
	if ref == "" {
		return defaultImage(ctx, root, logger)
	}

	// The brought image needs the harness's programs; it brings its own init.
	bins, err := BuildBinaries(ctx, root, "", DefaultPrograms()[1:]...)
	if err != nil {
		return "", fmt.Errorf("programs for %s: %w", ref, err)
	}
	c.binaries = bins
	return ref, nil
}

var (
	defaultImageMu   sync.Mutex
	defaultImageTags = map[string]string{}
)

// defaultImage builds the harness sandbox image once per module root and process.
func defaultImage(ctx context.Context, moduleRoot string, logger *slog.Logger) (string, error) {
	defaultImageMu.Lock()
	defer defaultImageMu.Unlock()
	if tag, ok := defaultImageTags[moduleRoot]; ok {
		return tag, nil
	}

	start := time.Now()
	bins, err := BuildBinaries(ctx, moduleRoot, "", DefaultPrograms()...)
	if err != nil {
		return "", fmt.Errorf("default image: %w", err)
	}
	logger.Info("binaries built", "programs", len(bins),
		"duration", time.Since(start).Round(time.Millisecond))

	spec, err := SandboxImageSpec(bins)
	if err != nil {
		return "", fmt.Errorf("default image: %w", err)
	}
	spec.Logger = logger
	tag, err := BuildImage(ctx, spec)
	if err != nil {
		return "", fmt.Errorf("default image: %w", err)
	}
	defaultImageTags[moduleRoot] = tag
	return tag, nil
}

// SandboxImageSpec lays out the harness sandbox image: the programs in ImageBinDir,
// sandbox-init as entrypoint, the agent's numeric user, and HOME and PATH set for it.
// binaries must hold sandbox-init.
func SandboxImageSpec(binaries map[string]string) (ImageSpec, error) {
	if binaries["sandbox-init"] == "" {
		return ImageSpec{}, errors.New("sandbox image spec: no sandbox-init among the binaries")
	}
	files := make(map[string]ImageFile, len(binaries))
	for name, hostPath := range binaries {
		if !validProgram(name) {
			return ImageSpec{}, fmt.Errorf("sandbox image spec: bad program name %q", name)
		}
		files[path.Join(ImageBinDir, name)] = ImageFile{HostPath: hostPath, Mode: 0o755}
	}
	return ImageSpec{
		Repository: SandboxRepository,
		Files:      files,
		Entrypoint: []string{path.Join(ImageBinDir, "sandbox-init")},
		User:       fmt.Sprintf("%d:%d", AgentUID, AgentGID),
		Env:        map[string]string{"HOME": ContainerHome, "PATH": containerPath},
	}, nil
}

// request turns the configuration into the testcontainers request.
func (c *config) request(img string, copyIn bool, logger *slog.Logger,
) testcontainers.GenericContainerRequest {
	labels := Labels()
	labels[LabelSandbox] = c.name

	env := map[string]string{"HOME": ContainerHome, "PATH": containerPath}
	maps.Copy(env, c.env)

	mounts := []mount.Mount{
		tmpfsVolume(ContainerHome, c.uid, c.gid, 0o700, "64m", labels),
	}
	if copyIn {
		mounts = append(mounts, tmpfsVolume(CopiedBinDir, 0, 0, 0o755, "512m", labels))
	}

	req := testcontainers.ContainerRequest{
		Image:      img,
		Entrypoint: c.entrypoint,
		Env:        env,
		Labels:     labels,
		Name: fmt.Sprintf("agentkeys-%s-%s-%d", c.name, RunID(),
			containerSeq.Add(1)),
		Tmpfs: map[string]string{"/tmp": "rw,nosuid,nodev,noexec,size=64m,mode=1777"},
		ConfigModifier: func(cfg *container.Config) {
			cfg.User = fmt.Sprintf("%d:%d", c.uid, c.gid)
			cfg.WorkingDir = ContainerHome
		},
		HostConfigModifier: func(hc *container.HostConfig) {
			hc.ReadonlyRootfs = true
			hc.CapDrop = []string{"ALL"}
			hc.SecurityOpt = append(hc.SecurityOpt, "no-new-privileges:true")
			hc.Mounts = append(hc.Mounts, mounts...)
		},
	}
	if c.network != "" {
		req.Networks = []string{c.network}
		req.NetworkAliases = map[string][]string{c.network: c.aliases}
	}
	return testcontainers.GenericContainerRequest{
		ContainerRequest: req,
		Started:          true,
		Logger:           tcLogger{logger: logger},
	}
}

// tmpfsVolume is an anonymous local volume backed by a tmpfs. Unlike a plain tmpfs mount it
// is a volume to the daemon, so CopyToContainer can write into it on a read-only root; the
// volume is removed with the container. NoCopy keeps the image's content at the target, if
// any, from overriding the owner and mode given here.
func tmpfsVolume(target string, uid, gid int, mode os.FileMode, size string,
	labels map[string]string,
) mount.Mount {
	o := fmt.Sprintf("size=%s,uid=%d,gid=%d,mode=%04o,nosuid,nodev", size, uid, gid, mode)
	return mount.Mount{
		Type:   mount.TypeVolume,
		Target: target,
		VolumeOptions: &mount.VolumeOptions{
			NoCopy: true,
			Labels: labels,
			DriverConfig: &mount.Driver{
				Name:    "local",
				Options: map[string]string{"type": "tmpfs", "device": "tmpfs", "o": o},
			},
		},
	}
}

// copyPrograms copies host binaries into CopiedBinDir, root-owned and executable.
func (s *Container) copyPrograms(ctx context.Context, programs map[string]string) error {
	if len(programs) == 0 {
		return nil
	}

	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		for _, name := range slices.Sorted(maps.Keys(programs)) {
			if err := tarFile(tw, name, programs[name], 0o755, 0, 0); err != nil {
				pw.CloseWithError(fmt.Errorf("program %s: %w", name, err))
				return
			}
		}
		pw.CloseWithError(tw.Close())
	}()
	defer pr.Close()

	err := s.cli.CopyToContainer(ctx, s.id, CopiedBinDir, pr, container.CopyToContainerOptions{})
	if err != nil {
		return fmt.Errorf("copy programs: %w", err)
	}
	for name := range programs {
		s.copied[name] = true
	}
	return nil
}

// tarFile writes the host file src into tw under name.
func tarFile(tw *tar.Writer, name, src string, mode os.FileMode, uid, gid int) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}

	err = tw.WriteHeader(&tar.Header{
		Name: name, Typeflag: tar.TypeReg, Size: info.Size(),
		Mode: int64(mode.Perm()), Uid: uid, Gid: gid, ModTime: info.ModTime(),
	})
	if err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}

// ID returns the Docker container id.
func (s *Container) ID() string { return s.id }

// Home returns ContainerHome.
func (s *Container) Home() string { return ContainerHome }

// Testcontainer returns the underlying testcontainers container, for what the Sandbox
// interface does not cover (its IP on a network, say).
func (s *Container) Testcontainer() testcontainers.Container { return s.ctr }

// Exec runs a program with Docker's exec API and keeps stdout and stderr apart. A program
// copied in at start is run from CopiedBinDir; any other name is looked up in the PATH of
// the container.
func (s *Container) Exec(ctx context.Context, cmd []string, opts ...ExecOption) (
	ExecResult, error,
) {
	ec, err := applyExecOptions(opts)
	if err != nil {
		return ExecResult{}, fmt.Errorf("exec: %w", err)
	}
	res, err := s.exec(ctx, cmd, ec)
	s.log.record(cmd, ec.env, res, err)
	return res, err
}

func (s *Container) exec(ctx context.Context, cmd []string, ec execConfig) (ExecResult, error) {
	if len(cmd) == 0 {
		return ExecResult{}, errors.New("exec: empty command")
	}
	argv := slices.Clone(cmd)
	if s.copied[argv[0]] {
		argv[0] = path.Join(CopiedBinDir, argv[0])
	}

	start := time.Now()
	created, err := s.cli.ContainerExecCreate(ctx, s.id, container.ExecOptions{
		AttachStdin:  ec.stdin != nil,
		AttachStdout: true,
		AttachStderr: true,
		Env:          envList(ec.env),
		WorkingDir:   ContainerHome,
		Cmd:          argv,
	})
	if err != nil {
		return ExecResult{}, fmt.Errorf("exec %s: create: %w", cmd[0], err)
	}

	stdout, stderr, err := s.attach(ctx, created.ID, ec.stdin)
	res := ExecResult{Stdout: stdout, Stderr: stderr}
	if err != nil {
		return res, fmt.Errorf("exec %s: %w", cmd[0], err)
	}

	res.ExitCode, err = s.exitCode(ctx, created.ID)
	res.Duration = time.Since(start)
	if err != nil {
		return res, fmt.Errorf("exec %s: %w", cmd[0], err)
	}

	// When the runtime cannot start the program at all, the engine reports it as exit 126 or
	// 127 with its own message on stdout. That is an exec that did not run, not a program
	// that failed.
	if (res.ExitCode == 126 || res.ExitCode == 127) &&
		strings.HasPrefix(res.Stdout, "OCI runtime exec failed") {
		return res, fmt.Errorf("exec %s: %s", cmd[0], strings.TrimSpace(res.Stdout))
	}
	return res, nil
}

// attach streams stdin in and demultiplexes stdout and stderr until the program ends. The
// hijacked connection ignores the context once established, so a cancelled context closes
// it; the program itself keeps running, since Docker has no call to kill an exec.
func (s *Container) attach(ctx context.Context, execID string, stdin io.Reader) (
	string, string, error,
) {
	att, err := s.cli.ContainerExecAttach(ctx, execID, container.ExecAttachOptions{})
	if err != nil {
		return "", "", fmt.Errorf("attach: %w", err)
	}
	defer att.Close()

	stop := context.AfterFunc(ctx, att.Close)
	defer stop()

	if stdin != nil {
		go func() {
			_, _ = io.Copy(att.Conn, stdin)
			_ = att.CloseWrite()
		}()
	}

	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, att.Reader); err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return stdout.String(), stderr.String(), fmt.Errorf("read output: %w", err)
	}
	if ctx.Err() != nil {
		return stdout.String(), stderr.String(), ctx.Err()
	}
	return stdout.String(), stderr.String(), nil
}

// exitCode waits for the exec to be reported finished: the output stream can end a moment
// before the engine records the exit.
func (s *Container) exitCode(ctx context.Context, execID string) (int, error) {
	for delay := time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		inspect, err := s.cli.ContainerExecInspect(ctx, execID)
		if err != nil {
			return 0, fmt.Errorf("inspect: %w", err)
		}
		if !inspect.Running {
			return inspect.ExitCode, nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(delay):
		}
	}
}

// CopyFileTo copies a host file into the container, owned by the agent. It can write only into
// the two volumes, HOME and the copied bin directory: the daemon refuses any other target,
// /tmp included, because the root file system is read-only. Missing parent directories are
// made owner-only.
func (s *Container) CopyFileTo(ctx context.Context, hostPath, sandboxPath string,
	mode os.FileMode,
) error {
	dst := inContainer(sandboxPath)

	base, missing, err := s.existingParent(ctx, path.Dir(dst))
	if err != nil {
		return fmt.Errorf("copy %s: %w", sandboxPath, err)
	}

	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		for i := range missing {
			err := tw.WriteHeader(&tar.Header{
				Name: path.Join(missing[:i+1]...) + "/", Typeflag: tar.TypeDir,
				Mode: 0o700, Uid: s.uid, Gid: s.gid, ModTime: time.Now(),
			})
			if err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		name := path.Join(append(slices.Clone(missing), path.Base(dst))...)
		if err := tarFile(tw, name, hostPath, mode, s.uid, s.gid); err != nil {
			pw.CloseWithError(err)
			return
		}
		pw.CloseWithError(tw.Close())
	}()
	defer pr.Close()

	err = s.cli.CopyToContainer(ctx, s.id, base, pr, container.CopyToContainerOptions{})
	if err != nil {
		return fmt.Errorf("copy %s: %w", sandboxPath, err)
	}
	return nil
}

// existingParent walks up from dir to the nearest directory that exists in the container and
// returns it with the names of the directories still to be made below it.
func (s *Container) existingParent(ctx context.Context, dir string) (string, []string, error) {
	var missing []string
	for {
		st, err := s.cli.ContainerStatPath(ctx, s.id, dir)
		if err == nil {
			if !st.Mode.IsDir() {
				return "", nil, fmt.Errorf("%s is not a directory", dir)
			}
			return dir, missing, nil
		}
		if !cerrdefs.IsNotFound(err) || dir == "/" {
			return "", nil, fmt.Errorf("stat %s: %w", dir, err)
		}
		missing = append([]string{path.Base(dir)}, missing...)
		dir = path.Dir(dir)
	}
}

// FileMode asks the engine for the path's stat, as an archive copy would see it, with
// nothing run in the container and nothing copied out.
func (s *Container) FileMode(ctx context.Context, sandboxPath string) (os.FileMode, error) {
	st, err := s.cli.ContainerStatPath(ctx, s.id, inContainer(sandboxPath))
	if err != nil {
		return 0, fmt.Errorf("file mode %s: %w", sandboxPath, err)
	}
	return st.Mode, nil
}

// inContainer is sandboxPath inside the container: "~/" and a relative path are
// taken from HOME.
func inContainer(sandboxPath string) string {
	p := sandboxPath
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		p = rest
	}
	if !path.IsAbs(p) {
		p = path.Join(ContainerHome, p)
	}
	return path.Clean(p)
}

// Logs returns the container's own output, if it wrote any, followed by the exec transcript.
func (s *Container) Logs(ctx context.Context) (string, error) {
	var b strings.Builder
	if s.id != "" {
		rc, err := s.cli.ContainerLogs(ctx, s.id, container.LogsOptions{
			ShowStdout: true, ShowStderr: true,
		})
		if err != nil {
			return s.log.String(), fmt.Errorf("container logs: %w", err)
		}
		defer rc.Close()
		var out bytes.Buffer
		if _, err := stdcopy.StdCopy(&out, &out, rc); err != nil {
			return s.log.String(), fmt.Errorf("container logs: %w", err)
		}
		if out.Len() > 0 {
			b.WriteString("container output:\n" + out.String())
			if !strings.HasSuffix(out.String(), "\n") {
				b.WriteByte('\n')
			}
		}
	}
	b.WriteString(s.log.String())
	return b.String(), nil
}

// abandon removes a container whose start failed. The start may have failed because ctx was
// cancelled, which must not stop the removal too.
func (s *Container) abandon(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	return s.Close(ctx)
}

// Close stops and removes the container and its volumes.
func (s *Container) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		if s.ctr == nil {
			return
		}
		// Nothing in a sandbox needs a graceful stop; a short timeout keeps an image whose
		// entrypoint ignores SIGTERM from holding up every test's teardown.
		err := s.ctr.Terminate(ctx, testcontainers.StopTimeout(time.Second))
		if err != nil {
			s.closeErr = fmt.Errorf("close container sandbox: %w", err)
			return
		}
		s.logger.Info("container removed", "id", shortID(s.id))
	})
	return s.closeErr
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
