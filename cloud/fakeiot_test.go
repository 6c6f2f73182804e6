package cloud

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeIoT speaks the handful of AWS IoT control-plane REST calls
// registration uses, with the request shapes, status codes and error
// bodies of the AWS API model (service iot, restJson1: the error type in
// the X-Amzn-ErrorType header, {"message": ...} in the body). Certificates
// are really issued from the CSRs, by a CA of its own.
type fakeIoT struct {
	t   testing.TB
	srv *httptest.Server

	mu       sync.Mutex
	calls    []string // "METHOD path" in order
	certs    map[string]*fakeCert
	policies map[string]string          // name -> document
	attached map[string]map[string]bool // policy -> targets
	things   map[string]map[string]bool // thing -> principals
	types    map[string]bool            // thing types that exist
	groups   map[string][]string        // thing group -> things
	attrs    map[string]map[string]any  // thing -> attributes
	// failures: operation key ("POST /things/x") -> remaining errors to send
	throttle map[string]int
	deny     map[string]bool
	// wrongKey makes CreateCertificateFromCsr return a certificate for
	// another key.
	wrongKey bool
}

type fakeCert struct {
	arn, id, pem, status string
}

// fakeIoTKey signs the fake's certificates.
var fakeIoTKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

// mustCSR is a CSR for some other key.
func mustCSR(t testing.TB) []byte {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

const fakeAccount = "123456789012"
const fakeRegion = "eu-west-1"
const fakeEndpoint = "a1b2c3d4e5f6g7-ats.iot.eu-west-1.amazonaws.com"

func newFakeIoT(t testing.TB) *fakeIoT {
	f := &fakeIoT{t: t, certs: map[string]*fakeCert{}, policies: map[string]string{},
		attached: map[string]map[string]bool{}, things: map[string]map[string]bool{},
		types: map[string]bool{}, groups: map[string][]string{}, attrs: map[string]map[string]any{},
		throttle: map[string]int{}, deny: map[string]bool{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeIoT) fail(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("X-Amzn-ErrorType", typ)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

func (f *fakeIoT) ok(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	if v == nil {
		v = map[string]any{}
	}
	json.NewEncoder(w).Encode(v)
}

// writes returns the calls that change something.
func (f *fakeIoT) writes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var w []string
	for _, c := range f.calls {
		if !strings.HasPrefix(c, "GET ") {
			w = append(w, c)
		}
	}
	return w
}

func (f *fakeIoT) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := r.Method + " " + r.URL.Path
	f.calls = append(f.calls, key)
	// Every call is signed (SigV4) by the SDK.
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
		f.fail(w, 403, "UnrecognizedClientException", "missing signature")
		return
	}
	if f.deny[key] {
		f.fail(w, 403, "AccessDeniedException", "User: arn:aws:iam::123456789012:user/test is not authorized to perform this action")
		return
	}
	if f.throttle[key] > 0 {
		f.throttle[key]--
		f.fail(w, 429, "ThrottlingException", "Rate exceeded")
		return
	}
	body, _ := io.ReadAll(r.Body)
	var in map[string]any
	if len(body) > 0 {
		if err := json.Unmarshal(body, &in); err != nil {
			f.fail(w, 400, "InvalidRequestException", "bad JSON")
			return
		}
	}
	p := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	q := r.URL.Query()
	switch {
	case r.Method == "POST" && r.URL.Path == "/certificates":
		csrPEM, _ := in["certificateSigningRequest"].(string)
		b, _ := pem.Decode([]byte(csrPEM))
		if b == nil || q.Get("setAsActive") != "true" {
			f.fail(w, 400, "InvalidRequestException", "bad CSR or setAsActive missing")
			return
		}
		csr, err := x509.ParseCertificateRequest(b.Bytes)
		if err != nil || csr.CheckSignature() != nil {
			f.fail(w, 400, "InvalidRequestException", "CSR signature invalid")
			return
		}
		pub := csr.PublicKey
		if f.wrongKey {
			other, _ := x509.ParseCertificateRequest(mustCSR(f.t))
			pub = other.PublicKey
		}
		idb := make([]byte, 32)
		rand.Read(idb)
		id := hex.EncodeToString(idb)
		sn, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
		// AWS issues certificates with CN "AWS IoT Certificate".
		tmpl := &x509.Certificate{SerialNumber: sn, Subject: pkix.Name{CommonName: "AWS IoT Certificate"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * 365 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, fakeIoTKey)
		if err != nil {
			f.fail(w, 500, "InternalFailureException", err.Error())
			return
		}
		c := &fakeCert{arn: fmt.Sprintf("arn:aws:iot:%s:%s:cert/%s", fakeRegion, fakeAccount, id), id: id,
			pem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), status: "ACTIVE"}
		f.certs[id] = c
		f.ok(w, map[string]string{"certificateArn": c.arn, "certificateId": id, "certificatePem": c.pem})
	case p[0] == "certificates" && len(p) == 2:
		c := f.certs[p[1]]
		if c == nil {
			f.fail(w, 404, "ResourceNotFoundException", "certificate not found")
			return
		}
		switch r.Method {
		case "GET":
			f.ok(w, map[string]any{"certificateDescription": map[string]any{"certificateArn": c.arn, "certificateId": c.id,
				"status": c.status, "certificatePem": c.pem}})
		case "PUT":
			st := q.Get("newStatus")
			if st != "INACTIVE" && st != "ACTIVE" && st != "REVOKED" {
				f.fail(w, 400, "InvalidRequestException", "bad newStatus")
				return
			}
			c.status = st
			w.WriteHeader(200)
		case "DELETE":
			// AWS refuses to delete an active or attached certificate.
			if c.status == "ACTIVE" {
				f.fail(w, 409, "CertificateStateException", "certificate is active")
				return
			}
			for _, ps := range f.things {
				if ps[c.arn] {
					f.fail(w, 409, "DeleteConflictException", "certificate attached to a thing")
					return
				}
			}
			for _, ts := range f.attached {
				if ts[c.arn] {
					f.fail(w, 409, "DeleteConflictException", "certificate has policies attached")
					return
				}
			}
			delete(f.certs, c.id)
			w.WriteHeader(200)
		}
	case p[0] == "policies" && len(p) == 2:
		name := p[1]
		switch r.Method {
		case "GET":
			doc, ok := f.policies[name]
			if !ok {
				f.fail(w, 404, "ResourceNotFoundException", "policy not found")
				return
			}
			f.ok(w, map[string]any{"policyName": name, "policyDocument": doc, "defaultVersionId": "1",
				"policyArn": fmt.Sprintf("arn:aws:iot:%s:%s:policy/%s", fakeRegion, fakeAccount, name)})
		case "POST":
			if _, ok := f.policies[name]; ok {
				f.fail(w, 409, "ResourceAlreadyExistsException", "policy exists")
				return
			}
			doc, _ := in["policyDocument"].(string)
			if strings.Contains(doc, `"iot:*"`) {
				f.t.Errorf("policy grants iot:*: %s", doc)
			}
			f.policies[name] = doc
			f.ok(w, map[string]any{"policyName": name, "policyDocument": doc, "policyVersionId": "1"})
		case "DELETE":
			if len(f.attached[name]) > 0 {
				f.fail(w, 409, "DeleteConflictException", "policy attached")
				return
			}
			delete(f.policies, name)
			w.WriteHeader(200)
		}
	case p[0] == "target-policies" && len(p) == 2:
		name := p[1]
		target, _ := in["target"].(string)
		if _, ok := f.policies[name]; !ok {
			f.fail(w, 404, "ResourceNotFoundException", "policy not found")
			return
		}
		if f.attached[name] == nil {
			f.attached[name] = map[string]bool{}
		}
		if r.Method == "PUT" {
			f.attached[name][target] = true
		} else {
			delete(f.attached[name], target)
		}
		w.WriteHeader(200)
	case p[0] == "policy-targets" && len(p) == 2 && r.Method == "POST":
		var ts []string
		for t := range f.attached[p[1]] {
			ts = append(ts, t)
		}
		f.ok(w, map[string]any{"targets": ts})
	case p[0] == "things" && len(p) == 2:
		name := p[1]
		switch r.Method {
		case "GET":
			if _, ok := f.things[name]; !ok {
				f.fail(w, 404, "ResourceNotFoundException", "thing not found")
				return
			}
			f.ok(w, map[string]any{"thingName": name, "thingArn": "arn:aws:iot:" + fakeRegion + ":" + fakeAccount + ":thing/" + name})
		case "POST":
			if _, ok := f.things[name]; ok {
				f.fail(w, 409, "ResourceAlreadyExistsException", "thing exists")
				return
			}
			if tt, ok := in["thingTypeName"].(string); ok && !f.types[tt] {
				f.fail(w, 404, "ResourceNotFoundException", "thing type "+tt+" not found")
				return
			}
			if ap, ok := in["attributePayload"].(map[string]any); ok {
				f.attrs[name], _ = ap["attributes"].(map[string]any)
			}
			f.things[name] = map[string]bool{}
			f.ok(w, map[string]any{"thingName": name, "thingId": "id-" + name, "thingArn": "arn:aws:iot:" + fakeRegion + ":" + fakeAccount + ":thing/" + name})
		case "DELETE":
			if len(f.things[name]) > 0 {
				f.fail(w, 409, "InvalidRequestException", "thing has principals attached")
				return
			}
			delete(f.things, name)
			w.WriteHeader(200)
		}
	case p[0] == "things" && len(p) == 3 && p[2] == "principals":
		ps, ok := f.things[p[1]]
		if !ok {
			f.fail(w, 404, "ResourceNotFoundException", "thing not found")
			return
		}
		principal := r.Header.Get("X-Amzn-Principal")
		switch r.Method {
		case "GET":
			var l []string
			for k := range ps {
				l = append(l, k)
			}
			f.ok(w, map[string]any{"principals": l})
		case "PUT":
			if principal == "" {
				f.fail(w, 400, "InvalidRequestException", "x-amzn-principal missing")
				return
			}
			ps[principal] = true
			w.WriteHeader(200)
		case "DELETE":
			delete(ps, principal)
			w.WriteHeader(200)
		}
	case r.Method == "PUT" && r.URL.Path == "/thing-groups/addThingToThingGroup":
		g, _ := in["thingGroupName"].(string)
		th, _ := in["thingName"].(string)
		if _, ok := f.groups[g]; !ok {
			f.fail(w, 404, "ResourceNotFoundException", "thing group "+g+" not found")
			return
		}
		f.groups[g] = append(f.groups[g], th)
		f.ok(w, nil)
	case r.Method == "PUT" && r.URL.Path == "/thing-groups/removeThingFromThingGroup":
		g, _ := in["thingGroupName"].(string)
		th, _ := in["thingName"].(string)
		f.groups[g] = slices.DeleteFunc(f.groups[g], func(x string) bool { return x == th })
		f.ok(w, nil)
	case r.Method == "GET" && r.URL.Path == "/endpoint":
		if q.Get("endpointType") != "iot:Data-ATS" {
			f.fail(w, 400, "InvalidRequestException", "want endpointType iot:Data-ATS")
			return
		}
		f.ok(w, map[string]string{"endpointAddress": fakeEndpoint})
	default:
		f.fail(w, 404, "UnknownOperationException", "not implemented by the fake: "+key)
	}
}

// dataPlane judges a device's connection as AWS IoT would: the server is
// the ATS endpoint, the device trusts Amazon Root CA 1, and its certificate
// is ACTIVE, attached to the thing it names, with a policy attached.
func (f *fakeIoT) dataPlane(server, thing string, certPEM, caFile []byte) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if server != fakeEndpoint+":8883" {
		return "connect to " + server + ": not the endpoint"
	}
	if string(caFile) != string(AmazonRootCA1) {
		return "TLS: server certificate not trusted"
	}
	for _, c := range f.certs {
		if c.pem != string(certPEM) {
			continue
		}
		if c.status != "ACTIVE" {
			return "TLS: certificate " + c.status
		}
		if !f.things[thing][c.arn] {
			return "CONNACK: not authorized (certificate not attached to thing " + thing + ")"
		}
		for _, ts := range f.attached {
			if ts[c.arn] {
				return ""
			}
		}
		return "CONNACK: not authorized (no policy)"
	}
	return "TLS: unknown certificate"
}
