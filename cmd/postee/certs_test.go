package main

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

func runCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := newRootCmd(&out, &errOut)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCertsCommand: postee certs makes a CA, a controller certificate for
// the given names and runner certificates whose CN is the runner's name,
// all verifying against the CA for their use; and runner NKeys.
func TestCertsCommand(t *testing.T) {
	dir := t.TempDir()
	if _, err := runCmd(t, "certs", "controller", "--dir", dir); err == nil || !strings.Contains(err.Error(), "postee certs ca") {
		t.Fatalf("controller before the CA: %v", err)
	}
	for _, args := range [][]string{
		{"certs", "ca", "--dir", dir},
		{"certs", "controller", "--dir", dir, "--hosts", "ctl.example,10.1.2.3,localhost"},
		{"certs", "runner", "postee-runner-1", "--dir", dir},
	} {
		if out, err := runCmd(t, args...); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(readCert(t, filepath.Join(dir, "ca.pem")))

	ctl := readCert(t, filepath.Join(dir, "controller.pem"))
	for _, name := range []string{"ctl.example", "10.1.2.3", "localhost"} {
		if _, err := ctl.Verify(x509.VerifyOptions{Roots: pool, DNSName: name, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("controller certificate for %s: %v", name, err)
		}
	}
	if _, err := ctl.Verify(x509.VerifyOptions{Roots: pool, DNSName: "other.example"}); err == nil {
		t.Error("controller certificate valid for a name not in --hosts")
	}
	run := readCert(t, filepath.Join(dir, "postee-runner-1.pem"))
	if run.Subject.String() != "CN=postee-runner-1" {
		t.Errorf("runner subject %q, want exactly CN=postee-runner-1 (the controller maps the whole subject)", run.Subject)
	}
	if _, err := run.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("runner certificate as a client: %v", err)
	}
	if _, err := run.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Error("runner certificate usable as a server certificate")
	}
	for _, key := range []string{"ca-key.pem", "controller-key.pem", "postee-runner-1-key.pem"} {
		st, err := os.Stat(filepath.Join(dir, key))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v", key, st.Mode(), err)
		}
	}
	// Nothing is overwritten by accident.
	before, _ := os.ReadFile(filepath.Join(dir, "ca-key.pem"))
	if _, err := runCmd(t, "certs", "ca", "--dir", dir); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("second ca: %v", err)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "ca-key.pem")); !bytes.Equal(before, after) {
		t.Error("the CA key changed")
	}
	if _, err := runCmd(t, "certs", "runner", "bad.name", "--dir", dir); err == nil {
		t.Error("a runner name that is not one was accepted")
	}

	out, err := runCmd(t, "certs", "nkey", "postee-runner-2", "--dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	seedFile := filepath.Join(dir, "postee-runner-2.seed")
	seed, err := os.ReadFile(seedFile)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := nkeys.FromSeed(bytes.TrimSpace(seed))
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	if !strings.Contains(out, "nkey: "+pub) || strings.Contains(out, string(bytes.TrimSpace(seed))) {
		t.Errorf("output shows the wrong key, or the seed:\n%s", out)
	}
	if _, err := nats.NkeyOptionFromSeed(seedFile); err != nil {
		t.Errorf("the runner cannot read its seed file: %v", err)
	}
}
