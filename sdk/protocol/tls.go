package protocol

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"strconv"
	"time"
)

// How the host gives a plugin process its transport TLS (TransportFor,
// ServerTLS): the plugin's certificate and key arrive on an inherited pipe
// (file descriptor EnvTLSFD names), never in the environment, which others
// may read (/proc/<pid>/environ); the host's certificate, which is public,
// in PLUGIN_CLIENT_CERT, go-plugin's own variable: a plugin built without
// ServerTLS falls back to go-plugin's automatic mTLS with it, and the host
// then trusts the certificate that plugin announces in its handshake.
const (
	EnvClientCert = "PLUGIN_CLIENT_CERT"
	EnvTLSFD      = "POSTEE_PLUGIN_TLS_FD"
	// tlsFD is the descriptor of the pipe in the plugin: the first of
	// exec.Cmd.ExtraFiles.
	tlsFD = 3
	// maxTLSBytes bounds what ServerTLS reads from the pipe.
	maxTLSBytes = 64 << 10
)

// tlsServerName is the name in both certificates (go-plugin dials
// "localhost").
const tlsServerName = "localhost"

// Transport is the mutual TLS between the host and one plugin process on
// the plugin's Unix socket, as go-plugin's automatic mTLS sets it up (only
// this host can call the plugin, and the host talks only to the process it
// started), with P-256 keys: go-plugin's automatic mTLS makes a P-521 key
// on each side at every start, which with the handshakes cost a few
// milliseconds of CPU per plugin started.
type Transport struct {
	// Client is the host's TLS configuration for the plugin.
	Client *tls.Config
	// Env and File go to the plugin's exec.Cmd: Env appended to its
	// environment, File as its only ExtraFiles entry (the read end of a
	// pipe holding the plugin's certificate and key). The host closes File
	// once the plugin started (or failed to).
	Env  []string
	File *os.File
}

// HostIdentity is the host's certificate for its plugins (one per host
// process is enough: plugins only trust it, it holds no secret of
// theirs).
type HostIdentity struct {
	cert tls.Certificate
	pem  []byte
}

// NewHostIdentity makes a host certificate.
func NewHostIdentity() (*HostIdentity, error) {
	certPEM, keyPEM, err := selfSigned()
	if err != nil {
		return nil, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	return &HostIdentity{cert: cert, pem: certPEM}, nil
}

// TransportFor makes the TLS of one plugin start: a fresh certificate and
// key for the plugin, which the host alone trusts.
func (h *HostIdentity) TransportFor() (*Transport, error) {
	certPEM, keyPEM, err := selfSigned()
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(certPEM) {
		return nil, errors.New("plugin TLS: own certificate unreadable")
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("plugin TLS: %w", err)
	}
	// Well under a pipe's buffer: the write does not wait for the reader.
	_, err = w.Write(append(certPEM, keyPEM...))
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = r.Close()
		return nil, fmt.Errorf("plugin TLS: %w", err)
	}
	return &Transport{
		Client: &tls.Config{
			Certificates: []tls.Certificate{h.cert},
			RootCAs:      roots,
			ServerName:   tlsServerName,
			MinVersion:   tls.VersionTLS12,
		},
		Env:  []string{EnvClientCert + "=" + string(h.pem), fmt.Sprintf("%s=%d", EnvTLSFD, tlsFD)},
		File: r,
	}, nil
}

// ServerTLS is the plugin's side of Transport: the TLS configuration the
// host passed, or nil when it passed none (go-plugin's automatic mTLS then
// applies). It closes the pipe, so that processes the plugin starts do not
// inherit it.
func ServerTLS() (*tls.Config, error) {
	fd := os.Getenv(EnvTLSFD)
	if fd == "" {
		return nil, nil
	}
	_ = os.Unsetenv(EnvTLSFD)
	if fd != strconv.Itoa(tlsFD) {
		return nil, fmt.Errorf("plugin TLS: %s=%q, want %d", EnvTLSFD, fd, tlsFD)
	}
	f := os.NewFile(tlsFD, "postee-plugin-tls")
	defer f.Close()
	return serverTLSFrom(f, os.Getenv(EnvClientCert))
}

// serverTLSFrom reads the plugin's certificate and key from r and trusts
// the host certificate clientPEM.
func serverTLSFrom(r io.Reader, clientPEM string) (*tls.Config, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxTLSBytes))
	if err != nil {
		return nil, fmt.Errorf("plugin TLS: read the host's pipe: %w", err)
	}
	cert, err := tls.X509KeyPair(data, data)
	if err != nil {
		return nil, fmt.Errorf("plugin TLS from the host's pipe: %w", err)
	}
	clients := x509.NewCertPool()
	if !clients.AppendCertsFromPEM([]byte(clientPEM)) {
		return nil, fmt.Errorf("plugin TLS: no host certificate in %s", EnvClientCert)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clients,
		MinVersion:   tls.VersionTLS12,
	}, nil
}

// selfSigned makes a P-256 key and a self-signed certificate for
// tlsServerName, usable by a server and a client alike.
func selfSigned() (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: tlsServerName, Organization: []string{"postee plugin transport"}},
		DNSNames:              []string{tlsServerName},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}
