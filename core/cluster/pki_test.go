package cluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// certFiles is a PEM certificate and its PEM private key on disk.
type certFiles struct{ Cert, Key string }

// testPKI is a throwaway CA with a server certificate for 127.0.0.1 and
// client certificates (subject CN=<runner>), all PEM files in a temp dir.
type testPKI struct {
	CA      string // the CA certificate (PEM)
	Server  certFiles
	Clients map[string]certFiles // by CN

	dir    string
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
}

// newTestPKI generates a CA, a server certificate for 127.0.0.1/localhost
// and a client certificate for each CN in clients.
func newTestPKI(t *testing.T, clients ...string) *testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey := newECKey(t)
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: "postee test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	p := &testPKI{CA: filepath.Join(dir, "ca.pem"), Clients: map[string]certFiles{}, dir: dir, caCert: caCert, caKey: caKey}
	writePEM(t, p.CA, "CERTIFICATE", caDER)
	p.Server = p.issue(t, "server", &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: "postee-controller"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
	})
	for _, cn := range clients {
		p.Clients[cn] = p.issueClient(t, cn)
	}
	return p
}

// issueClient issues a client certificate with subject CN=cn.
func (p *testPKI) issueClient(t *testing.T, cn string) certFiles {
	t.Helper()
	now := time.Now()
	return p.issue(t, "client-"+cn, &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
}

func (p *testPKI) issue(t *testing.T, name string, tmpl *x509.Certificate) certFiles {
	t.Helper()
	key := newECKey(t)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	f := certFiles{Cert: filepath.Join(p.dir, name+".pem"), Key: filepath.Join(p.dir, name+"-key.pem")}
	writePEM(t, f.Cert, "CERTIFICATE", der)
	writePEM(t, f.Key, "EC PRIVATE KEY", keyDER)
	return f
}

func newECKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func serial(t *testing.T) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestPKIHelper(t *testing.T) {
	p := newTestPKI(t, "postee-runner-1", "postee-runner-2")
	pool, err := loadPool(p.CA)
	if err != nil {
		t.Fatal(err)
	}
	verify := func(file string, usage x509.ExtKeyUsage) *x509.Certificate {
		t.Helper()
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(data)
		if block == nil {
			t.Fatalf("%s: no PEM block", file)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Fatalf("%s does not verify against the CA: %v", file, err)
		}
		return c
	}
	srv := verify(p.Server.Cert, x509.ExtKeyUsageServerAuth)
	if err := srv.VerifyHostname("127.0.0.1"); err != nil {
		t.Fatalf("server certificate: %v", err)
	}
	for _, cn := range []string{"postee-runner-1", "postee-runner-2"} {
		c := verify(p.Clients[cn].Cert, x509.ExtKeyUsageClientAuth)
		// The NATS server maps the subject's RDN string to a user.
		if got, want := c.Subject.String(), "CN="+cn; got != want {
			t.Errorf("client subject = %q, want %q", got, want)
		}
	}
}
