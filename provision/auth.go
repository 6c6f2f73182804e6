package provision

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"hash"
	"math/rand/v2"
	"strconv"
	"strings"
)

// challenge is the device's 401 message: a JSON object in a string.
type challenge struct {
	AuthType  string          `json:"auth_type"`
	Nonce     json.RawMessage `json:"nonce"` // an integer, echoed exactly as given
	Realm     string          `json:"realm"`
	Algorithm string          `json:"algorithm"`
}

// digestAuth is the "auth" object of a request answering a challenge.
type digestAuth struct {
	Realm     string          `json:"realm"`
	Username  string          `json:"username"`
	Nonce     json.RawMessage `json:"nonce"`
	CNonce    uint64          `json:"cnonce"`
	Algorithm string          `json:"algorithm,omitempty"`
	Response  string          `json:"response"`
}

// learnChallenge keeps the challenge of a 401 reply for this and later
// requests (the device accepts a nonce for an hour, so one challenge
// serves a whole session). False if the message is not a digest challenge.
func (c *Client) learnChallenge(msg string) bool {
	var ch challenge
	if err := json.Unmarshal([]byte(msg), &ch); err != nil || ch.AuthType != "digest" || len(ch.Nonce) == 0 {
		return false
	}
	if newHash(ch.Algorithm) == nil {
		return false
	}
	c.mu.Lock()
	c.auth = &ch
	c.mu.Unlock()
	return true
}

// authFor signs a request with the last challenge, or returns nil.
func (c *Client) authFor() *digestAuth {
	c.mu.Lock()
	ch := c.auth
	c.mu.Unlock()
	if ch == nil || c.opts.Username == "" {
		return nil
	}
	cnonce := rand.Uint64N(1 << 31)
	return &digestAuth{
		Realm:     ch.Realm,
		Username:  c.opts.Username,
		Nonce:     ch.Nonce,
		CNonce:    cnonce,
		Algorithm: ch.Algorithm,
		Response:  digestResponse(ch.Algorithm, c.opts.Username, c.opts.Password, ch.Realm, strings.Trim(string(ch.Nonce), `"`), cnonce),
	}
}

// digestResponse is the firmware's variant of HTTP digest (RFC 7616, qop
// "auth", nc 1) over a fixed method and URI:
// H(H(user:realm:pass):nonce:1:cnonce:auth:H(dummy_method:dummy_uri)).
func digestResponse(algorithm, user, pass, realm, nonce string, cnonce uint64) string {
	h := func(parts ...string) string {
		d := newHash(algorithm)
		d.Write([]byte(strings.Join(parts, ":")))
		return hex.EncodeToString(d.Sum(nil))
	}
	ha1 := h(user, realm, pass)
	ha2 := h("dummy_method", "dummy_uri")
	return h(ha1, nonce, "1", strconv.FormatUint(cnonce, 10), "auth", ha2)
}

func newHash(algorithm string) hash.Hash {
	switch strings.ToUpper(algorithm) {
	case "", "MD5":
		return md5.New()
	case "SHA-256":
		return sha256.New()
	}
	return nil
}
