package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nkeys"
	"github.com/spf13/cobra"

	"github.com/postee-dev/postee/core/cluster"
)

// certsOptions are the flags of postee certs.
type certsOptions struct {
	dir   string
	days  int
	hosts []string
	force bool
}

func newCertsCmd(stdout io.Writer) *cobra.Command {
	o := &certsOptions{}
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "Make the CA, certificates and NKeys of a controller and its runners",
		Long: `Make what controller/runner mode needs to authenticate both sides:

  postee certs ca                                   ca.pem, ca-key.pem
  postee certs controller --hosts ctl.example,10.0.0.5  controller.pem, controller-key.pem
  postee certs runner NAME                          NAME.pem, NAME-key.pem (CN=NAME)
  postee certs nkey NAME                            NAME.seed, and the public key for runners:

Files go to --dir (default: the current directory); existing files are
kept unless --force. Keys are ECDSA P-256, written with mode 0600.`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&o.dir, "dir", ".", "directory of the CA and of the files made")
	pf.IntVar(&o.days, "days", 365, "validity of certificates, in days (the CA: ten times as long)")
	pf.BoolVar(&o.force, "force", false, "overwrite existing files")
	ctl := &cobra.Command{
		Use:   "controller",
		Short: "Make the controller's server certificate (signed by ca.pem), valid for --hosts",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return o.issue(stdout, "controller", "postee-controller", true)
		},
	}
	ctl.Flags().StringSliceVar(&o.hosts, "hosts", []string{"localhost", "127.0.0.1"}, "names and addresses runners use to reach the controller (the certificate's SANs)")
	cmd.AddCommand(
		&cobra.Command{
			Use:   "ca",
			Short: "Make a CA (ca.pem, ca-key.pem)",
			Args:  cobra.NoArgs,
			RunE:  func(*cobra.Command, []string) error { return o.makeCA(stdout) },
		},
		ctl,
		&cobra.Command{
			Use:   "runner NAME",
			Short: "Make a runner's client certificate (CN=NAME, signed by ca.pem)",
			Args:  cobra.ExactArgs(1),
			RunE: func(_ *cobra.Command, args []string) error {
				if err := cluster.ValidRunnerName(args[0]); err != nil {
					return err
				}
				return o.issue(stdout, args[0], args[0], false)
			},
		},
		&cobra.Command{
			Use:   "nkey NAME",
			Short: "Make a runner's NKey: NAME.seed for the runner, the public key for the controller's runners:",
			Args:  cobra.ExactArgs(1),
			RunE:  func(_ *cobra.Command, args []string) error { return o.makeNKey(stdout, args[0]) },
		},
	)
	return cmd
}

func (o *certsOptions) path(name string) string { return filepath.Join(o.dir, name) }

// create opens a new file with mode, refusing to overwrite unless --force.
func (o *certsOptions) write(name string, data []byte, mode os.FileMode) error {
	path := o.path(name)
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if o.force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, mode)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s exists: keep it, or pass --force to replace it", path)
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func newSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

// writeKeyPair writes name.pem and name-key.pem.
func (o *certsOptions) writeKeyPair(name string, certDER []byte, key *ecdsa.PrivateKey) error {
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	for _, f := range []string{name + ".pem", name + "-key.pem"} {
		if _, err := os.Stat(o.path(f)); err == nil && !o.force {
			return fmt.Errorf("%s exists: keep it, or pass --force to replace it", o.path(f))
		}
	}
	if err := o.write(name+"-key.pem", pemBlock("EC PRIVATE KEY", keyDER), 0o600); err != nil {
		return err
	}
	return o.write(name+".pem", pemBlock("CERTIFICATE", certDER), 0o644)
}

func (o *certsOptions) makeCA(stdout io.Writer) error {
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := newSerial()
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "postee CA", Organization: []string{"postee"}},
		NotBefore:             now.Add(-5 * time.Minute),
		NotAfter:              now.AddDate(0, 0, 10*o.days),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	if err := o.writeKeyPair("ca", der, key); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "CA: %s (give it to the controller as --controller-ca-root and to runners as --runner-ca-root)\n"+
		"CA key: %s (keep it offline: it signs the controller's and runners' certificates)\n", o.path("ca.pem"), o.path("ca-key.pem"))
	return nil
}

func (o *certsOptions) loadCA() (*x509.Certificate, any, error) {
	certPEM, err := os.ReadFile(o.path("ca.pem"))
	if err != nil {
		return nil, nil, fmt.Errorf("the CA: %w (make it first with: postee certs ca --dir %s)", err, o.dir)
	}
	keyPEM, err := os.ReadFile(o.path("ca-key.pem"))
	if err != nil {
		return nil, nil, fmt.Errorf("the CA key: %w", err)
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, nil, fmt.Errorf("%s or %s is not PEM", o.path("ca.pem"), o.path("ca-key.pem"))
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	var key any
	if key, err = x509.ParseECPrivateKey(kb.Bytes); err != nil {
		if key, err = x509.ParsePKCS8PrivateKey(kb.Bytes); err != nil {
			if key, err = x509.ParsePKCS1PrivateKey(kb.Bytes); err != nil {
				return nil, nil, fmt.Errorf("%s: unsupported key", o.path("ca-key.pem"))
			}
		}
	}
	return cert, key, nil
}

// issue makes file.pem and file-key.pem with subject CN=cn, for a server
// (the controller, with --hosts as SANs) or a client (a runner).
func (o *certsOptions) issue(stdout io.Writer, file, cn string, server bool) error {
	ca, caKey, err := o.loadCA()
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := newSerial()
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		// The controller maps a runner's whole subject to its name: CN only.
		Subject:     pkix.Name{CommonName: cn},
		NotBefore:   now.Add(-5 * time.Minute),
		NotAfter:    now.AddDate(0, 0, o.days),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		for _, h := range o.hosts {
			h = strings.TrimSpace(h)
			if ip := net.ParseIP(h); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else if h != "" {
				tmpl.DNSNames = append(tmpl.DNSNames, h)
			}
		}
		if len(tmpl.IPAddresses)+len(tmpl.DNSNames) == 0 {
			return errors.New("--hosts: at least one name or address runners use to reach the controller")
		}
	}
	if ca.NotAfter.Before(tmpl.NotAfter) {
		tmpl.NotAfter = ca.NotAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	if err := o.writeKeyPair(file, der, key); err != nil {
		return err
	}
	if server {
		fmt.Fprintf(stdout, "controller certificate: %s, key %s, valid for %s\n"+
			"  postee --controller-mode --controller-tls-cert %s --controller-tls-key %s --controller-ca-root %s ...\n",
			o.path(file+".pem"), o.path(file+"-key.pem"), strings.Join(o.hosts, ", "),
			o.path(file+".pem"), o.path(file+"-key.pem"), o.path("ca.pem"))
		return nil
	}
	fmt.Fprintf(stdout, "runner certificate: %s (CN=%s), key %s\n"+
		"  postee --runner-name %s --runner-ca-root %s --runner-tls-cert %s --runner-tls-key %s --controller-url tls://CONTROLLER:4222\n",
		o.path(file+".pem"), cn, o.path(file+"-key.pem"), cn, o.path("ca.pem"), o.path(file+".pem"), o.path(file+"-key.pem"))
	return nil
}

func (o *certsOptions) makeNKey(stdout io.Writer, name string) error {
	if err := cluster.ValidRunnerName(name); err != nil {
		return err
	}
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return err
	}
	kp, err := nkeys.CreateUser()
	if err != nil {
		return err
	}
	seed, err := kp.Seed()
	if err != nil {
		return err
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return err
	}
	if err := o.write(name+".seed", append(seed, '\n'), 0o600); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "runner NKey seed: %s (the runner's only: --runner-seed-file %s)\n"+
		"add to the controller's config:\nrunners:\n  - name: %s\n    nkey: %s\n", o.path(name+".seed"), o.path(name+".seed"), name, pub)
	return nil
}
