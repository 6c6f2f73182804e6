package ca

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strconv"

	"golang.org/x/crypto/scrypt"
)

// Private keys of the CA are stored as a PEM block of type
// "MOS ENCRYPTED PRIVATE KEY":
//
//	-----BEGIN MOS ENCRYPTED PRIVATE KEY-----
//	KDF: scrypt
//	KDF-Params: N=32768,r=8,p=1
//	KDF-Salt: <base64, 16 bytes>
//	Cipher: AES-256-GCM
//	Nonce: <base64, 12 bytes>
//
//	<base64 of AES-256-GCM(key, nonce, PKCS#8 DER, aad)>
//	-----END MOS ENCRYPTED PRIVATE KEY-----
//
// The AES key is scrypt(passphrase, salt, N, r, p, 32). The additional
// authenticated data is the header text "scrypt N=..,r=..,p=.. AES-256-GCM",
// so changing a parameter in the file fails authentication like a wrong
// passphrase does. Go's standard library writes no encrypted PKCS#8
// (x509.EncryptPEMBlock is deprecated and insecure: unauthenticated CBC with
// an MD5-based KDF), hence this small authenticated format built only from
// standard primitives. scrypt parameters follow the package's recommendation
// for interactive logins in 2017 (N=32768, r=8, p=1).
const (
	encryptedKeyType = "MOS ENCRYPTED PRIVATE KEY"
	scryptN          = 1 << 15
	scryptR          = 8
	scryptP          = 1
)

// ErrWrongPassphrase is returned when a key file does not decrypt with the
// passphrase given (or was altered).
var ErrWrongPassphrase = errors.New("wrong CA passphrase (or the key file was altered)")

func aadFor(n, r, p int) []byte {
	return []byte(fmt.Sprintf("scrypt N=%d,r=%d,p=%d AES-256-GCM", n, r, p))
}

func encryptKey(key *ecdsa.PrivateKey, pass []byte) ([]byte, error) {
	if len(pass) == 0 {
		return nil, errors.New("an empty passphrase is not allowed for a CA key")
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	salt := make([]byte, 16)
	nonce := make([]byte, 12)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	gcm, err := newGCM(pass, salt, scryptN, scryptR, scryptP)
	if err != nil {
		return nil, err
	}
	block := &pem.Block{
		Type: encryptedKeyType,
		Headers: map[string]string{
			"KDF":        "scrypt",
			"KDF-Params": fmt.Sprintf("N=%d,r=%d,p=%d", scryptN, scryptR, scryptP),
			"KDF-Salt":   base64.StdEncoding.EncodeToString(salt),
			"Cipher":     "AES-256-GCM",
			"Nonce":      base64.StdEncoding.EncodeToString(nonce),
		},
		Bytes: gcm.Seal(nil, nonce, der, aadFor(scryptN, scryptR, scryptP)),
	}
	return pem.EncodeToMemory(block), nil
}

func newGCM(pass, salt []byte, n, r, p int) (cipher.AEAD, error) {
	k, err := scrypt.Key(pass, salt, n, r, p, 32)
	if err != nil {
		return nil, err
	}
	b, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

func decryptKey(data, pass []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != encryptedKeyType {
		return nil, fmt.Errorf("not a %s PEM file", encryptedKeyType)
	}
	h := block.Headers
	if h["KDF"] != "scrypt" || h["Cipher"] != "AES-256-GCM" {
		return nil, fmt.Errorf("unsupported key encryption %q/%q", h["KDF"], h["Cipher"])
	}
	var n, r, p int
	if _, err := fmt.Sscanf(h["KDF-Params"], "N=%d,r=%d,p=%d", &n, &r, &p); err != nil {
		return nil, fmt.Errorf("bad KDF-Params %q: %v", h["KDF-Params"], err)
	}
	// Refuse parameters that would make scrypt allocate without bound.
	if n < 2 || n > 1<<20 || r < 1 || r > 32 || p < 1 || p > 16 {
		return nil, fmt.Errorf("KDF-Params out of range: %s", strconv.Quote(h["KDF-Params"]))
	}
	salt, err := base64.StdEncoding.DecodeString(h["KDF-Salt"])
	if err != nil {
		return nil, fmt.Errorf("bad KDF-Salt: %v", err)
	}
	nonce, err := base64.StdEncoding.DecodeString(h["Nonce"])
	if err != nil || len(nonce) != 12 {
		return nil, errors.New("bad Nonce")
	}
	gcm, err := newGCM(pass, salt, n, r, p)
	if err != nil {
		return nil, err
	}
	der, err := gcm.Open(nil, nonce, block.Bytes, aadFor(n, r, p))
	if err != nil {
		return nil, ErrWrongPassphrase
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, err
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("CA key is not an ECDSA key")
	}
	return ek, nil
}
