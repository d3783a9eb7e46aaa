package smpp

import (
	"smsrouter/internal/smsctest"

	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// selfSigned writes a key and a certificate for "localhost" and returns
// their paths.
func selfSigned(t *testing.T) (keyFile, certFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "test SMSC"},
		DNSNames:     []string{"localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyFile, certFile = filepath.Join(dir, "key.pem"), filepath.Join(dir, "cert.pem")
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	return keyFile, certFile
}

func TestTLS(t *testing.T) {
	keyFile, certFile := selfSigned(t)
	s := smsctest.Start(t, "--tls", keyFile, certFile)

	tlsCfg, err := NewTLSConfig(certFile, "localhost")
	if err != nil {
		t.Fatal(err)
	}
	c := runClient(t, s, Config{TLS: tlsCfg})
	res, err := c.Submit(submitCtx(t), Message{From: "100", To: "200", Text: "over TLS"})
	if err != nil {
		t.Fatal(err)
	}
	if ev := s.Wait("submit", nil); ev["text"] != "over TLS" || ev["message_id"] != res.MessageIDs[0] {
		t.Errorf("submit %v", ev)
	}

	// A certificate for another name is refused, and nothing is sent.
	wrong, err := NewTLSConfig(certFile, "smsc.example")
	if err != nil {
		t.Fatal(err)
	}
	c2 := runClient(t, s, Config{TLS: wrong, BindWait: 300 * time.Millisecond})
	if _, err := c2.Submit(submitCtx(t), Message{From: "100", To: "200", Text: "x"}); !IsTemporary(err) || IsUncertain(err) {
		t.Fatalf("submit over an untrusted TLS: %v", err)
	}
	if st := c2.Status()[0]; st.Bound || !strings.Contains(st.LastError, "certificate") {
		t.Errorf("status %+v", st)
	}
	if _, err := NewTLSConfig(filepath.Join(t.TempDir(), "none.pem"), ""); err == nil {
		t.Error("a missing CA file was accepted")
	}
}
