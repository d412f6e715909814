package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// selfSigned writes a certificate for 127.0.0.1 and its key as PEM files.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "postee-test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestHTTPSWebhook(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	s, url := newSink(t)
	p := start(t, `
routes:
- name: r
  actions: [post]
  template: raw-json
templates:
- name: raw-json
  rego-package: postee.rawmessage.json
actions:
- name: post
  type: http
  enable: true
  url: `+url+`
  method: POST
`, opts{
		args: []string{"--tls", "127.0.0.1:0"},
		env:  []string{"AQUAALERT_CERT_PEM=" + certFile, "AQUAALERT_KEY_PEM=" + keyFile},
	})
	// The HTTPS listener is logged after the HTTP one.
	p.Stderr.waitFor(t, "the https listener", 30*time.Second, func(s string) bool { return strings.Contains(s, "scheme=https") })
	for _, m := range listenRe.FindAllStringSubmatch(p.Stderr.String(), -1) {
		if m[1] == "https" {
			p.TLSURL = "https://" + m[2]
		}
	}
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Post(p.TLSURL+"/", "application/json", strings.NewReader(`{"over":"tls"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if r := s.next(t); !strings.Contains(r.Body, `"over": "tls"`) {
		t.Fatalf("sink got %q", r.Body)
	}
	// Plain HTTP on the TLS port is refused.
	resp, err = client.Post(strings.Replace(p.TLSURL, "https", "http", 1)+"/", "application/json", strings.NewReader(`{}`))
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plaintext accepted on the TLS port")
		}
	}
}
