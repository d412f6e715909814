package main

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

// The tests run against a real Docker Engine: TestMain starts a private
// dockerd (its own socket, data and exec directories under a temporary
// directory), imports a tiny image holding Debian's static busybox, points
// DOCKER_HOST at it, and stops it afterwards. Without dockerd (or root, or
// busybox) the tests that need it are skipped, except when CI is set: then
// they fail, because CI installs docker.io and busybox-static.

const (
	// testImage is the busybox image imported for the tests.
	testImage = "postee-test/busybox:latest"
	// busyboxPath is where Debian's busybox-static installs the binary.
	busyboxPath = "/bin/busybox"
	// daemonStartTimeout bounds waiting for dockerd to answer /_ping.
	daemonStartTimeout = 90 * time.Second
	// daemonStopTimeout bounds waiting for dockerd to exit after SIGTERM.
	daemonStopTimeout = 30 * time.Second
)

// noDocker is why the Docker tests cannot run here; empty when they can.
var noDocker string

// testClient talks to the test daemon.
var testClient *client.Client

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	stop, err := startDaemon()
	if err != nil {
		if os.Getenv("CI") != "" {
			fmt.Fprintf(os.Stderr, "docker tests: %v (CI is set: install docker.io and busybox-static)\n", err)
			return 1
		}
		noDocker = err.Error()
	}
	code := m.Run()
	if stop != nil {
		if err := stop(); err != nil {
			fmt.Fprintf(os.Stderr, "docker tests: stop dockerd: %v\n", err)
		}
	}
	return code
}

// requireDocker skips t when no test daemon runs.
func requireDocker(t *testing.T) {
	t.Helper()
	if noDocker != "" {
		t.Skipf("no Docker Engine for the tests: %s", noDocker)
	}
}

// startDaemon starts the private dockerd and imports the test image; stop
// ends it and removes its directories.
func startDaemon() (stop func() error, err error) {
	bin, err := exec.LookPath("dockerd")
	if err != nil {
		return nil, fmt.Errorf("dockerd is not installed")
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("dockerd needs root")
	}
	if _, err := os.Stat(busyboxPath); err != nil {
		return nil, fmt.Errorf("no static busybox at %s (package busybox-static)", busyboxPath)
	}
	dir, err := os.MkdirTemp("", "postee-dockerd-")
	if err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "docker.sock")
	logPath := filepath.Join(dir, "dockerd.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin,
		"--storage-driver=vfs", "--iptables=false", "--ip6tables=false", "--bridge=none",
		"--host", "unix://"+sock,
		"--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "docker.pid"),
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group, so that a Ctrl-C of the tests does not reach it
	// before stop runs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start dockerd: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	stop = func() error {
		if testClient != nil {
			testClient.Close()
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		var err error
		select {
		case <-exited:
		case <-time.After(daemonStopTimeout):
			_ = cmd.Process.Kill()
			<-exited
			err = fmt.Errorf("dockerd did not stop within %s; killed", daemonStopTimeout)
		}
		logFile.Close()
		if rmErr := os.RemoveAll(dir); rmErr != nil && err == nil {
			err = rmErr
		}
		return err
	}
	fail := func(err error) (func() error, error) {
		log, _ := os.ReadFile(logPath)
		_ = stop()
		return nil, fmt.Errorf("%w\ndockerd log:\n%s", err, tail(log, 4000))
	}

	host := "unix://" + sock
	c, err := client.New(client.WithHost(host))
	if err != nil {
		return fail(err)
	}
	testClient = c
	if err := waitPing(c, exited); err != nil {
		return fail(err)
	}
	if err := importBusybox(c); err != nil {
		return fail(fmt.Errorf("import the test image: %w", err))
	}
	// The actions find the daemon the way they do in production.
	os.Setenv("DOCKER_HOST", host)
	for _, v := range []string{"DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_API_VERSION", "DOCKER_CONTEXT"} {
		os.Unsetenv(v)
	}
	return stop, nil
}

// waitPing polls /_ping until the daemon answers, dockerd exits, or the
// deadline passes.
func waitPing(c *client.Client, exited <-chan error) error {
	deadline := time.Now().Add(daemonStartTimeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := c.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("dockerd did not answer /_ping within %s: %v", daemonStartTimeout, err)
		}
		select {
		case err := <-exited:
			return fmt.Errorf("dockerd exited: %v", err)
		case <-tick.C:
		}
	}
}

// importBusybox imports a root file system holding only busybox and its
// applet links as testImage.
func importBusybox(c *client.Client) error {
	bb, err := os.ReadFile(busyboxPath)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Now()
	for _, d := range []string{"bin/", "tmp/", "etc/", "proc/", "sys/", "dev/", "data/"} {
		mode := int64(0o755)
		if d == "tmp/" {
			mode = 0o1777
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: mode, ModTime: now}); err != nil {
			return err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755, Size: int64(len(bb)), ModTime: now}); err != nil {
		return err
	}
	if _, err := tw.Write(bb); err != nil {
		return err
	}
	for _, applet := range []string{"sh", "echo", "env", "cat", "sleep", "printf", "ls", "true", "false", "printenv", "tr", "head", "seq", "yes"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + applet, Linkname: "busybox", Mode: 0o777, ModTime: now}); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := c.ImageImport(ctx, client.ImageImportSource{Source: &buf, SourceName: "-"}, testImage, client.ImageImportOptions{})
	if err != nil {
		return err
	}
	defer res.Close()
	_, err = io.Copy(io.Discard, res)
	return err
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
