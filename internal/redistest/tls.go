package redistest

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
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Certs are the PEM files of a throwaway certificate authority and of two
// certificates it signed: one for a server on 127.0.0.1, ::1 and
// localhost, one for a client. They live in a test's temporary directory
// and are valid for a day.
type Certs struct {
	// CA is the authority's certificate: what a client trusts to check
	// the server, and the server to check clients.
	CA string
	// ServerCert and ServerKey are the server's certificate and key. The
	// certificate serves for client authentication too, as the
	// redis-servers of a cluster use it between themselves.
	ServerCert, ServerKey string
	// ClientCert and ClientKey are a client's certificate and key.
	ClientCert, ClientKey string
}

// NewCerts makes a new authority and its certificates in a temporary
// directory of t. Two calls give two authorities that trust nothing of
// each other's.
func NewCerts(t testing.TB) *Certs {
	t.Helper()
	dir := t.TempDir()
	c := &Certs{
		CA:         filepath.Join(dir, "ca.pem"),
		ServerCert: filepath.Join(dir, "server.pem"),
		ServerKey:  filepath.Join(dir, "server-key.pem"),
		ClientCert: filepath.Join(dir, "client.pem"),
		ClientKey:  filepath.Join(dir, "client-key.pem"),
	}
	now := time.Now()
	caKey := newKey(t)
	ca := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: "redistest CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER := sign(t, ca, ca, caKey, caKey)
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatalf("redistest: parse the CA certificate: %v", err)
	}
	writePEM(t, c.CA, "CERTIFICATE", caDER)

	leaf := func(name string, usage []x509.ExtKeyUsage, certFile, keyFile string, server bool) {
		key := newKey(t)
		tmpl := &x509.Certificate{
			SerialNumber: serial(t),
			Subject:      pkix.Name{CommonName: name},
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(24 * time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  usage,
		}
		if server {
			tmpl.DNSNames = []string{"localhost"}
			tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
		}
		writePEM(t, certFile, "CERTIFICATE", sign(t, tmpl, caCert, key, caKey))
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatalf("redistest: marshal a key: %v", err)
		}
		writePEM(t, keyFile, "PRIVATE KEY", der)
	}
	leaf("localhost", []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, c.ServerCert, c.ServerKey, true)
	leaf("redistest client", []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, c.ClientCert, c.ClientKey, false)
	return c
}

// ClientConfig returns a TLS configuration that trusts the authority and,
// if withCert, shows the client certificate.
func (c *Certs) ClientConfig(t testing.TB, withCert bool) *tls.Config {
	t.Helper()
	pemCA, err := os.ReadFile(c.CA)
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pemCA) {
		t.Fatalf("redistest: no certificate in %s", c.CA)
	}
	cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	if withCert {
		pair, err := tls.LoadX509KeyPair(c.ClientCert, c.ClientKey)
		if err != nil {
			t.Fatalf("redistest: %v", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg
}

// WithTLS makes the server speak TLS only, on its one port, with a server
// certificate signed by a throwaway authority (Server.Certs). Clients need
// not show a certificate (tls-auth-clients no) unless WithClientCerts is
// given too. Server.URL is then a rediss:// URL, and Server.Client trusts
// the authority and shows the client certificate.
func WithTLS() Option {
	return func(c *config) {
		if c.tls == "" {
			c.tls = "no"
		}
	}
}

// WithClientCerts makes the server speak TLS, as WithTLS does, and require
// of every client a certificate signed by its authority (tls-auth-clients
// yes): a client without one is refused when it connects.
func WithClientCerts() Option {
	return func(c *config) { c.tls = "yes" }
}

// withCerts makes the server use certs instead of new ones: the servers of
// a cluster share an authority.
func withCerts(certs *Certs) Option {
	return func(c *config) { c.certs = certs }
}

// tlsArgs returns the redis-server arguments of cfg's TLS, if any.
func tlsArgs(cfg config) []string {
	if cfg.tls == "" {
		return nil
	}
	args := []string{
		"--tls-cert-file", cfg.certs.ServerCert,
		"--tls-key-file", cfg.certs.ServerKey,
		"--tls-ca-cert-file", cfg.certs.CA,
		"--tls-auth-clients", cfg.tls,
	}
	if cfg.cluster {
		args = append(args, "--tls-cluster", "yes")
	}
	return args
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("redistest: generate a key: %v", err)
	}
	return key
}

func serial(t testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatalf("redistest: serial number: %v", err)
	}
	return n
}

func sign(t testing.TB, tmpl, parent *x509.Certificate, key, parentKey *ecdsa.PrivateKey) []byte {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatalf("redistest: sign a certificate: %v", err)
	}
	return der
}

func writePEM(t testing.TB, path, kind string, der []byte) {
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatalf("redistest: %v", err)
	}
}
