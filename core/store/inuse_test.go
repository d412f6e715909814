package store

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// TestHoldStore is not a test: run with POSTEE_TEST_HOLD_STORE=path, it
// opens the store there, says "held" and keeps it until stdin closes.
func TestHoldStore(t *testing.T) {
	path := os.Getenv("POSTEE_TEST_HOLD_STORE")
	if path == "" {
		t.Skip("helper process only")
	}
	s, err := Open(path)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	defer s.Close()
	fmt.Println("held")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
}

// A second process opening a store in use learns so within about a second,
// with the file, the holder's pid and the fix.
func TestOpenInUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "webhooks.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHoldStore$")
	cmd.Env = append(os.Environ(), "POSTEE_TEST_HOLD_STORE="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); _ = cmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "held\n" {
		t.Fatalf("helper: %q, %v", line, err)
	}

	start := time.Now()
	_, err = Open(path)
	took := time.Since(start)
	var inUse *InUseError
	if !errors.As(err, &inUse) {
		t.Fatalf("err = %v, want InUseError", err)
	}
	if took > time.Second {
		t.Errorf("took %v to say so", took)
	}
	want := fmt.Sprintf("store %s is in use by another postee (pid %d); give each postee its own PATH_TO_DB", path, cmd.Process.Pid)
	if runtime.GOOS != "linux" {
		want = fmt.Sprintf("store %s is in use by another postee; give each postee its own PATH_TO_DB", path)
	}
	if err.Error() != want {
		t.Errorf("err = %q\nwant %q", err, want)
	}

	// Once released, it opens.
	stdin.Close()
	_ = cmd.Wait()
	s, err := Open(path)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	s.Close()
}
