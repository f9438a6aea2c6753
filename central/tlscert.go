package central

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
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/vigil-perimeter/vigil/wire"
)

// hubCert serves the edge hub's certificate. A certificate from files is
// re-read when the file changes (renewals), checked at most once a minute;
// edges pin the public key, so a renewal must keep the key, and a changed
// key is logged as the emergency it is.
type hubCert struct {
	certFile, keyFile string
	pin               []byte // pin of the certificate central started with
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	modTime time.Time
	checked time.Time
}

// loadHubCert loads the configured certificate, or makes (once) and loads
// a self-signed one in dataDir/tls.
func loadHubCert(c EdgeHubConfig, dataDir string, log *slog.Logger) (*hubCert, error) {
	h := &hubCert{certFile: c.CertFile, keyFile: c.KeyFile, log: log}
	if h.certFile == "" {
		dir := filepath.Join(dataDir, "tls")
		h.certFile, h.keyFile = filepath.Join(dir, "edge-hub.crt"), filepath.Join(dir, "edge-hub.key")
		if _, err := os.Stat(h.certFile); errors.Is(err, os.ErrNotExist) {
			if err := writeSelfSigned(dir, h.certFile, h.keyFile, c.SelfSignedHosts); err != nil {
				return nil, err
			}
			log.Info("made a self-signed edge hub certificate", "file", h.certFile, "hosts", c.SelfSignedHosts)
		}
	}
	cert, mod, err := readKeyPair(h.certFile, h.keyFile)
	if err != nil {
		return nil, err
	}
	h.cert, h.modTime, h.checked = cert, mod, time.Now()
	h.pin = wire.CertPin(cert.Leaf)
	return h, nil
}

func readKeyPair(certFile, keyFile string) (*tls.Certificate, time.Time, error) {
	st, err := os.Stat(certFile)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("central: edge hub certificate: %w", err)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("central: edge hub certificate: %w", err)
	}
	return &cert, st.ModTime(), nil
}

// getCertificate is tls.Config.GetCertificate.
func (h *hubCert) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if time.Since(h.checked) < time.Minute {
		return h.cert, nil
	}
	h.checked = time.Now()
	st, err := os.Stat(h.certFile)
	if err != nil || st.ModTime().Equal(h.modTime) {
		return h.cert, nil
	}
	cert, mod, err := readKeyPair(h.certFile, h.keyFile)
	if err != nil {
		h.log.Error("edge hub certificate changed but does not load; keeping the old one", "err", err)
		return h.cert, nil
	}
	if pin := wire.CertPin(cert.Leaf); string(pin) != string(h.pin) {
		h.log.Error("edge hub certificate has a NEW KEY: enrolled edges pinned the old one and will refuse it; renew with the same key (certbot --reuse-key) or re-enrol the edges",
			"old_pin", wire.FormatPin(h.pin), "new_pin", wire.FormatPin(pin))
	}
	h.cert, h.modTime = cert, mod
	h.log.Info("edge hub certificate reloaded", "not_after", cert.Leaf.NotAfter)
	return h.cert, nil
}

func (h *hubCert) tlsConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS13, GetCertificate: h.getCertificate}
}

// writeSelfSigned makes a P-256 key and a ten-year certificate for hosts.
func writeSelfSigned(dir, certFile, keyFile string, hosts []string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("central: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "vigil central edge hub"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return fmt.Errorf("central: %w", err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return fmt.Errorf("central: %w", err)
	}
	return nil
}
