// Package testdocker runs a private Docker Engine for tests: dockerd on its
// own socket, with its data and exec directories under a temporary
// directory (the vfs storage driver, no iptables, no bridge), and a tiny
// image holding Debian's static busybox imported as Image. Nothing of the
// machine's own Docker (its socket, images or containers) is used or
// changed.
//
// It needs root, dockerd (package docker.io) and /bin/busybox (package
// busybox-static). Where they are missing, tests skip, except when the CI
// environment variable is set: CI installs them, so there a missing daemon
// fails the tests instead of hiding them.
package testdocker

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

const (
	// Image is the busybox image imported into every daemon started here.
	Image = "postee-test/busybox:latest"
	// BusyboxPath is where Debian's busybox-static installs the binary.
	BusyboxPath = "/bin/busybox"
	// StartTimeout bounds waiting for dockerd to answer /_ping.
	StartTimeout = 90 * time.Second
	// StopTimeout bounds waiting for dockerd to exit after SIGTERM.
	StopTimeout = 30 * time.Second
)

// Applets are the busybox applets Image has in /bin (besides busybox).
var Applets = []string{"sh", "echo", "env", "cat", "sleep", "printf", "ls", "true", "false", "printenv", "tr", "head", "seq", "yes"}

// Daemon is a running private dockerd.
type Daemon struct {
	// Host is its address as DOCKER_HOST takes it: unix://<dir>/docker.sock.
	Host string
	// Client talks to it (API version negotiated).
	Client *client.Client

	dir     string
	logPath string
	logFile *os.File
	cmd     *exec.Cmd
	exited  chan error
}

// InCI reports whether the CI environment variable is set: a daemon that
// cannot start is then a failure, not a reason to skip.
func InCI() bool { return os.Getenv("CI") != "" }

// Start starts a private dockerd, waits until it answers /_ping and imports
// Image. The error says why no daemon runs (not installed, not root, no
// busybox) or why it failed, with the end of dockerd's log.
func Start() (*Daemon, error) {
	bin, err := exec.LookPath("dockerd")
	if err != nil {
		return nil, fmt.Errorf("dockerd is not installed (package docker.io)")
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("dockerd needs root")
	}
	if _, err := os.Stat(BusyboxPath); err != nil {
		return nil, fmt.Errorf("no static busybox at %s (package busybox-static)", BusyboxPath)
	}
	dir, err := os.MkdirTemp("", "postee-dockerd-")
	if err != nil {
		return nil, err
	}
	d := &Daemon{dir: dir, logPath: filepath.Join(dir, "dockerd.log"), exited: make(chan error, 1)}
	sock := filepath.Join(dir, "docker.sock")
	d.Host = "unix://" + sock
	if d.logFile, err = os.Create(d.logPath); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	d.cmd = exec.Command(bin,
		"--storage-driver=vfs", "--iptables=false", "--ip6tables=false", "--bridge=none",
		"--host", d.Host,
		"--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "docker.pid"),
	)
	d.cmd.Stdout, d.cmd.Stderr = d.logFile, d.logFile
	// Its own process group, so that a Ctrl-C of the tests does not reach it
	// before Stop runs.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		d.logFile.Close()
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start dockerd: %w", err)
	}
	go func() { d.exited <- d.cmd.Wait() }()

	fail := func(err error) (*Daemon, error) {
		log := d.Log()
		_ = d.Stop()
		return nil, fmt.Errorf("%w\ndockerd log:\n%s", err, log)
	}
	if d.Client, err = client.New(client.WithHost(d.Host)); err != nil {
		return fail(err)
	}
	if err := d.waitPing(); err != nil {
		return fail(err)
	}
	if err := ImportBusybox(d.Client, Image); err != nil {
		return fail(fmt.Errorf("import the test image: %w", err))
	}
	return d, nil
}

// Require starts a daemon for t and stops it when t ends. Without the means
// to run one, t is skipped, or fails when CI is set.
func Require(t testing.TB) *Daemon {
	t.Helper()
	d, err := Start()
	if err != nil {
		if InCI() {
			t.Fatalf("no Docker Engine for the test (CI is set: install docker.io and busybox-static): %v", err)
		}
		t.Skipf("no Docker Engine for the test: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Stop(); err != nil {
			t.Errorf("stop dockerd: %v", err)
		}
	})
	return d
}

// Env is the environment that points a Docker client (postee's docker
// action, the docker command) at the daemon: DOCKER_HOST set, the other
// standard variables cleared.
func (d *Daemon) Env() []string {
	return []string{"DOCKER_HOST=" + d.Host, "DOCKER_TLS_VERIFY=", "DOCKER_CERT_PATH=", "DOCKER_API_VERSION=", "DOCKER_CONTEXT="}
}

// Setenv points this process's Docker clients at the daemon (for a
// TestMain; tests use t.Setenv with Env).
func (d *Daemon) Setenv() {
	os.Setenv("DOCKER_HOST", d.Host)
	for _, v := range []string{"DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_API_VERSION", "DOCKER_CONTEXT"} {
		os.Unsetenv(v)
	}
}

// Log returns the end of dockerd's log.
func (d *Daemon) Log() string {
	b, _ := os.ReadFile(d.logPath)
	const n = 4000
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// Stop ends dockerd (SIGTERM, then SIGKILL after StopTimeout) and removes
// its directories. It may be called more than once.
func (d *Daemon) Stop() error {
	if d.cmd == nil {
		return nil
	}
	if d.Client != nil {
		d.Client.Close()
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case <-d.exited:
	case <-time.After(StopTimeout):
		_ = d.cmd.Process.Kill()
		<-d.exited
		err = fmt.Errorf("dockerd did not stop within %s; killed", StopTimeout)
	}
	d.cmd = nil
	d.logFile.Close()
	if rmErr := os.RemoveAll(d.dir); rmErr != nil && err == nil {
		err = rmErr
	}
	return err
}

// waitPing polls /_ping until the daemon answers, dockerd exits, or
// StartTimeout passes.
func (d *Daemon) waitPing() error {
	deadline := time.Now().Add(StartTimeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := d.Client.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("dockerd did not answer /_ping within %s: %v", StartTimeout, err)
		}
		select {
		case err := <-d.exited:
			d.exited <- err // for Stop
			return fmt.Errorf("dockerd exited: %v", err)
		case <-tick.C:
		}
	}
}

// ImportBusybox imports, as ref, a root file system holding only busybox,
// its Applets as links in /bin, and empty /tmp, /etc, /proc, /sys, /dev
// and /data directories.
func ImportBusybox(c *client.Client, ref string) error {
	bb, err := os.ReadFile(BusyboxPath)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Now()
	for _, dir := range []string{"bin/", "tmp/", "etc/", "proc/", "sys/", "dev/", "data/"} {
		mode := int64(0o755)
		if dir == "tmp/" {
			mode = 0o1777
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: mode, ModTime: now}); err != nil {
			return err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755, Size: int64(len(bb)), ModTime: now}); err != nil {
		return err
	}
	if _, err := tw.Write(bb); err != nil {
		return err
	}
	for _, applet := range Applets {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + applet, Linkname: "busybox", Mode: 0o777, ModTime: now}); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := c.ImageImport(ctx, client.ImageImportSource{Source: &buf, SourceName: "-"}, ref, client.ImageImportOptions{})
	if err != nil {
		return err
	}
	defer res.Close()
	_, err = io.Copy(io.Discard, res)
	return err
}
