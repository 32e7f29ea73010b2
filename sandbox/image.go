package sandbox

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/pkg/jsonmessage"
)

// ImageSpec describes a FROM scratch image made of host files. Nothing is pulled: the image
// holds exactly the listed files, so its programs must be static binaries.
type ImageSpec struct {
	// Repository is the image name without a tag, such as "agentkeys-harness/sandbox". The tag
	// is a hash of the content.
	Repository string

	// Files maps an absolute path in the image to what goes there. A scratch image has no
	// directories at all, not even /tmp; list an empty directory for each one needed. A
	// parent directory that is not listed is made root-owned, mode 0755.
	Files map[string]ImageFile

	// Entrypoint and Cmd in exec form.
	Entrypoint []string
	Cmd        []string

	// User is numeric, "uid:gid": a scratch image has no /etc/passwd to look a name up in.
	User string

	Env          map[string]string
	WorkDir      string
	ExposedPorts []string // "9000/tcp"
	Labels       map[string]string

	// Logger receives "image built" and "image cached"; nil means slog.Default().
	Logger *slog.Logger
}

// ImageFile is one entry of an image: a copy of a host file, or, without HostPath, an empty
// directory. Mode and owner are taken exactly as given, special bits included.
type ImageFile struct {
	HostPath string
	Mode     os.FileMode
	UID, GID int
}

// imageTagLen is how many hex digits of the content hash make the tag: enough that two
// different trees never meet, short enough to read in `docker images`.
const imageTagLen = 16

// imageLayout versions the way BuildImage turns a spec into an image; changing that way must
// change every tag, or a stale image would pass for a current one.
const imageLayout = "agentkeys-harness image layout 1"

var (
	imageLocksMu sync.Mutex
	imageLocks   = map[string]*sync.Mutex{}
)

// imageLock serialises builds of one tag within the process, so parallel tests that want the
// same image build it once and the others find it cached.
func imageLock(tag string) *sync.Mutex {
	imageLocksMu.Lock()
	defer imageLocksMu.Unlock()
	if imageLocks[tag] == nil {
		imageLocks[tag] = &sync.Mutex{}
	}
	return imageLocks[tag]
}

// BuildImage makes the image spec describes and returns its tag, "<repository>:<content
// hash>". The hash covers every file's bytes, mode and owner and the image configuration, so
// an image that already exists under that tag is up to date and nothing is built.
//
// The image is made by importing a root file system tar with the configuration given as
// Dockerfile instructions, not by a Dockerfile build. The classic builder of a 20.10 engine
// commits a container for every instruction, close to a second each on fuse-overlayfs, while
// an import is one call; and an import keeps the mode and owner of every entry exactly, where
// COPY neither keeps a copied directory's own mode nor owns only what it is told to.
func BuildImage(ctx context.Context, spec ImageSpec) (string, error) {
	logger := spec.Logger
	if logger == nil {
		logger = slog.Default()
	}

	tag, changes, entries, err := spec.plan()
	if err != nil {
		return "", fmt.Errorf("build image: %w", err)
	}
	cli, err := dockerClient(ctx)
	if err != nil {
		return "", fmt.Errorf("build image: %w", err)
	}

	mu := imageLock(tag)
	mu.Lock()
	defer mu.Unlock()

	if _, err := cli.ImageInspect(ctx, tag); err == nil {
		logger.Info("image cached", "image", tag)
		return tag, nil
	} else if !cerrdefs.IsNotFound(err) {
		return "", fmt.Errorf("build image: inspect %s: %w", tag, err)
	}

	start := time.Now()
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeRootFS(pw, entries)) }()
	defer pr.Close() // unblocks the writer when the daemon stops reading early

	// The run that built an image is worth knowing but is not content, so it stays out of
	// the hash. Its pid and host let a later sweep tell an image left untagged by a dead
	// run from one that a live run is still tagging.
	for _, k := range []string{LabelRun, LabelPID, LabelHost} {
		changes = append(changes, fmt.Sprintf("LABEL %s=%s", k, strconv.Quote(Labels()[k])))
	}
	resp, err := cli.ImageImport(ctx, image.ImportSource{Source: pr, SourceName: "-"}, tag,
		image.ImportOptions{Changes: changes, Message: "built by agentkeys-harness"})
	if err != nil {
		return "", fmt.Errorf("build image %s: %w", tag, err)
	}
	defer resp.Close()

	var out bytes.Buffer
	if err := jsonmessage.DisplayJSONMessagesStream(resp, &out, 0, false, nil); err != nil {
		return "", fmt.Errorf("build image %s: %w", tag, err)
	}

	logger.Info("image built", "image", tag, "files", len(entries),
		"duration", time.Since(start).Round(time.Millisecond))
	return tag, nil
}

// imageEntry is an ImageFile placed at dest.
type imageEntry struct {
	dest string
	ImageFile
}

// plan works out everything about the build that does not need the daemon: the tag, the
// configuration changes and the entries in the order they go into the tar.
func (spec ImageSpec) plan() (tag string, changes []string, entries []imageEntry, err error) {
	entries, err = imageEntries(spec)
	if err != nil {
		return "", nil, nil, err
	}
	changes = spec.changes()
	sum, err := contentHash(changes, entries)
	if err != nil {
		return "", nil, nil, err
	}
	return spec.Repository + ":" + sum[:imageTagLen], changes, entries, nil
}

// imageEntries validates the files and adds the parent directories nobody listed. Sorting by
// path puts every directory before what it holds.
func imageEntries(spec ImageSpec) ([]imageEntry, error) {
	if spec.Repository == "" || strings.ToLower(spec.Repository) != spec.Repository {
		return nil, fmt.Errorf("repository %q must be non-empty lower case", spec.Repository)
	}
	if spec.User != "" && !numericUser(spec.User) {
		return nil, fmt.Errorf("user %q must be numeric uid:gid", spec.User)
	}

	files := maps.Clone(spec.Files)
	if files == nil {
		files = map[string]ImageFile{}
	}
	for dest, f := range spec.Files {
		if !path.IsAbs(dest) || path.Clean(dest) != dest || dest == "/" {
			return nil, fmt.Errorf("file %q: destination must be a clean absolute path", dest)
		}
		if f.HostPath != "" {
			info, err := os.Stat(f.HostPath)
			if err != nil {
				return nil, fmt.Errorf("file %s: %w", dest, err)
			}
			if !info.Mode().IsRegular() {
				return nil, fmt.Errorf("file %s: %s is not a regular file", dest, f.HostPath)
			}
		}
		for dir := path.Dir(dest); dir != "/"; dir = path.Dir(dir) {
			parent, listed := spec.Files[dir]
			if listed && parent.HostPath != "" {
				return nil, fmt.Errorf("file %s: %s is a file, not a directory", dest, dir)
			}
			if !listed {
				files[dir] = ImageFile{Mode: 0o755}
			}
		}
	}

	entries := make([]imageEntry, 0, len(files))
	for _, dest := range slices.Sorted(maps.Keys(files)) {
		entries = append(entries, imageEntry{dest: dest, ImageFile: files[dest]})
	}
	return entries, nil
}

func numericUser(u string) bool {
	uid, gid, hasGroup := strings.Cut(u, ":")
	if _, err := strconv.ParseUint(uid, 10, 32); err != nil {
		return false
	}
	if hasGroup {
		if _, err := strconv.ParseUint(gid, 10, 32); err != nil {
			return false
		}
	}
	return true
}

// changes renders the image configuration as the Dockerfile instructions an import accepts.
func (spec ImageSpec) changes() []string {
	var out []string

	labels := map[string]string{LabelHarness: "1"}
	maps.Copy(labels, spec.Labels)
	out = append(out, "LABEL "+quotedPairs(labels))
	if len(spec.Env) > 0 {
		out = append(out, "ENV "+quotedPairs(spec.Env))
	}
	if len(spec.ExposedPorts) > 0 {
		ports := slices.Sorted(slices.Values(spec.ExposedPorts))
		out = append(out, "EXPOSE "+strings.Join(ports, " "))
	}
	if spec.User != "" {
		out = append(out, "USER "+spec.User)
	}
	if spec.WorkDir != "" {
		out = append(out, "WORKDIR "+spec.WorkDir)
	}
	if len(spec.Entrypoint) > 0 {
		out = append(out, "ENTRYPOINT "+jsonArray(spec.Entrypoint))
	}
	if len(spec.Cmd) > 0 {
		out = append(out, "CMD "+jsonArray(spec.Cmd))
	}
	return out
}

func quotedPairs(m map[string]string) string {
	pairs := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		pairs = append(pairs, strconv.Quote(k)+"="+strconv.Quote(m[k]))
	}
	return strings.Join(pairs, " ")
}

func jsonArray(s []string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// contentHash hashes what the image is made of: the configuration, and every entry's path,
// mode, owner and bytes.
func contentHash(changes []string, entries []imageEntry) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%d\n", imageLayout, len(changes))
	for _, c := range changes {
		fmt.Fprintf(h, "%d %s\n", len(c), c)
	}
	for _, e := range entries {
		fmt.Fprintf(h, "%d %s %o %d:%d\n", len(e.dest), e.dest, tarMode(e.Mode), e.UID, e.GID)
		if e.HostPath == "" {
			continue
		}
		f, err := os.Open(e.HostPath)
		if err != nil {
			return "", fmt.Errorf("hash %s: %w", e.dest, err)
		}
		n, err := io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", fmt.Errorf("hash %s: %w", e.dest, err)
		}
		fmt.Fprintf(h, "\n%d\n", n)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// tarMode turns an os.FileMode into the mode bits of a tar header, special bits included.
func tarMode(m os.FileMode) int64 {
	bits := int64(m.Perm())
	if m&os.ModeSetuid != 0 {
		bits |= 0o4000
	}
	if m&os.ModeSetgid != 0 {
		bits |= 0o2000
	}
	if m&os.ModeSticky != 0 {
		bits |= 0o1000
	}
	return bits
}

// writeRootFS streams the image's root file system as a tar. Streaming keeps a large binary
// (MinIO's is over 100 MB) out of memory and off the disk a second time.
func writeRootFS(w io.Writer, entries []imageEntry) error {
	tw := tar.NewWriter(w)
	for _, e := range entries {
		if err := writeRootFSEntry(tw, e); err != nil {
			return fmt.Errorf("root fs %s: %w", e.dest, err)
		}
	}
	return tw.Close()
}

// rootFSTime is the modification time of every entry: the image is the same whenever it is
// built.
var rootFSTime = time.Unix(0, 0)

func writeRootFSEntry(tw *tar.Writer, e imageEntry) error {
	hdr := &tar.Header{
		Name: strings.TrimPrefix(e.dest, "/"), Mode: tarMode(e.Mode),
		Uid: e.UID, Gid: e.GID, ModTime: rootFSTime, Format: tar.FormatPAX,
	}
	if e.HostPath == "" {
		hdr.Name += "/"
		hdr.Typeflag = tar.TypeDir
		return tw.WriteHeader(hdr)
	}

	f, err := os.Open(e.HostPath)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}

	hdr.Typeflag = tar.TypeReg
	hdr.Size = info.Size()
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	n, err := io.Copy(tw, f)
	if err != nil {
		return err
	}
	if n != info.Size() {
		return errors.New("file changed while building")
	}
	return nil
}
