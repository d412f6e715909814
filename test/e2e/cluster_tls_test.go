package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type pki struct {
	dir    string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	serial int64
	CAFile string
	certs  map[string][2]string // name → cert, key files
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "postee test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	p := &pki{dir: t.TempDir(), ca: ca, caKey: key, serial: 1, certs: map[string][2]string{}}
	p.CAFile = filepath.Join(p.dir, "ca.pem")
	os.WriteFile(p.CAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	return p
}

// issue makes a certificate with subject CN=cn, for a server (127.0.0.1)
// or a client.
func (p *pki) issue(t *testing.T, cn string, server bool) (certFile, keyFile string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	if server {
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certFile = filepath.Join(p.dir, cn+".pem")
	keyFile = filepath.Join(p.dir, cn+"-key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile
}

// With a CA root, the controller verifies runners' certificates and maps
// each to a runner: a runner can only be itself, and plaintext is refused.
func TestClusterTLSIdentity(t *testing.T) {
	p := newPKI(t)
	srvCert, srvKey := p.issue(t, "postee-controller", true)
	r1Cert, r1Key := p.issue(t, "postee-runner-1", false)
	r2Cert, r2Key := p.issue(t, "postee-runner-2", false)

	s, url := newSink(t)
	ctl, natsURL := startController(t, fmt.Sprintf(`
routes:
- name: r
  input: contains(input.image, "alpine")
  actions: [post-1, post-2]
  template: raw
templates:
- name: raw
  rego-package: postee.rawmessage.json
actions:
- name: post-1
  runs-on: postee-runner-1
  type: http
  enable: true
  url: %[1]s/one
  method: POST
  headers:
    Authorization: ["Bearer runner-1-secret-0c5e"]
- name: post-2
  runs-on: postee-runner-2
  type: http
  enable: true
  url: %[1]s/two
  method: POST
`, url), controllerOpts{args: []string{"--controller-tls-cert", srvCert, "--controller-tls-key", srvKey, "--controller-ca-root", p.CAFile}})

	natsURL = strings.Replace(natsURL, "nats://", "tls://", 1)
	r1 := startRunner(t, "postee-runner-1", natsURL, opts{args: []string{"--runner-ca-root", p.CAFile, "--runner-tls-cert", r1Cert, "--runner-tls-key", r1Key}})
	ctl.mustPost("/", `{"image":"alpine"}`)
	if r := s.next(t); r.Path != "/one" || r.Header.Get("Authorization") != "Bearer runner-1-secret-0c5e" {
		t.Fatalf("runner 1: %+v", r)
	}
	_ = r1

	// Runner 2's certificate claiming to be runner 1, plaintext (which the
	// controller upgrades to TLS, with a certificate the runner cannot
	// verify), and TLS without a client certificate: refused, and the
	// runner exits at once saying why.
	impostor := startRunner(t, "postee-runner-1", natsURL, opts{noWait: true,
		args: []string{"--runner-ca-root", p.CAFile, "--runner-tls-cert", r2Cert, "--runner-tls-key", r2Key}})
	plain := startRunner(t, "postee-runner-1", strings.Replace(natsURL, "tls://", "nats://", 1), opts{noWait: true})
	noCert := startRunner(t, "postee-runner-1", natsURL, opts{noWait: true, args: []string{"--runner-ca-root", p.CAFile}})
	for r, reason := range map[*postee]string{
		impostor: `has the subject CN "postee-runner-2", but --runner-name is "postee-runner-1"`,
		plain:    "not signed by a CA this runner trusts",
		noCert:   "requires a client certificate",
	} {
		if err := r.wait(30 * time.Second); err == nil {
			t.Errorf("runner exited with status 0:\n%s", r.Stderr)
		}
		if !strings.Contains(r.Stderr.String(), reason) {
			t.Errorf("runner log does not say %q:\n%s", reason, r.Stderr)
		}
	}
	for name, r := range map[string]*postee{"impostor": impostor, "plaintext": plain, "no certificate": noCert} {
		log := r.Stderr.String()
		if strings.Contains(log, "configuration received") || strings.Contains(log, "runner-1-secret") {
			t.Errorf("%s got a configuration:\n%s", name, log)
		}
	}
	// Runner 2 itself is fine, and gets only its own part.
	r2 := startRunner(t, "postee-runner-2", natsURL, opts{args: []string{"--runner-ca-root", p.CAFile, "--runner-tls-cert", r2Cert, "--runner-tls-key", r2Key}})
	if strings.Contains(r2.Stderr.String(), "runner-1-secret") {
		t.Fatal("runner 2 saw runner 1's secret")
	}
	if r := s.next(t); r.Path != "/two" { // the dispatch queued for runner 2 earlier
		t.Fatalf("runner 2: %+v", r)
	}
}
