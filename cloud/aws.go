package cloud

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/iot/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
)

// Files and values for AWS IoT on the device.
const (
	AWSCAFile = "aws-ca.pem" // Amazon Root CA 1
	// awsMQTTPort is AWS IoT's MQTT over TLS port with client certificates
	// (AWS IoT developer guide, "Protocols, port mappings, and
	// authentication").
	awsMQTTPort = "8883"
)

// AWSClientOptions locate the AWS account and endpoint.
type AWSClientOptions struct {
	Region string // empty: the SDK's resolution (AWS_REGION, profile)
	// EndpointURL overrides the IoT control-plane endpoint, as the AWS CLI's
	// --endpoint-url; empty: AWS_ENDPOINT_URL_IOT, AWS_ENDPOINT_URL, then
	// AWS's own, as the SDK resolves them.
	EndpointURL string
	// MaxAttempts for throttled or failed calls (the SDK's standard
	// retryer, exponential backoff with jitter); 0: 8.
	MaxAttempts int
}

// NewIoTClient builds an AWS IoT control-plane client with the SDK's
// standard credential chain (environment, shared config and credentials
// files with AWS_PROFILE, SSO, container and instance roles). It fails
// early, naming what to set, when no credentials are found.
func NewIoTClient(ctx context.Context, o AWSClientOptions) (*iot.Client, error) {
	var opts []func(*config.LoadOptions) error
	if o.Region != "" {
		opts = append(opts, config.WithRegion(o.Region))
	}
	attempts := o.MaxAttempts
	if attempts == 0 {
		attempts = 8
	}
	opts = append(opts, config.WithRetryer(func() aws.Retryer {
		return retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = attempts
			so.MaxBackoff = 20 * time.Second
		})
	}))
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, &CloudError{Err: fmt.Errorf("AWS configuration: %w", err)}
	}
	if cfg.Region == "" {
		return nil, &CloudError{Err: errors.New("no AWS region: give --region or set AWS_REGION (or a region in the profile)")}
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		return nil, &CloudError{Err: fmt.Errorf("no AWS credentials found (%v)", err),
			Hint: "set AWS_PROFILE (aws configure / aws sso login), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"}
	}
	return iot.NewFromConfig(cfg, func(io *iot.Options) {
		if o.EndpointURL != "" {
			io.BaseEndpoint = aws.String(o.EndpointURL)
		}
	}), nil
}

// CloudError is an AWS failure with what to do about it.
type CloudError struct {
	Err  error
	Hint string
}

func (e *CloudError) Error() string { return e.Err.Error() }
func (e *CloudError) Unwrap() error { return e.Err }

// awsErr names the call, and for a denied call the permission missing.
func awsErr(op string, err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "AccessDeniedException", "AccessDenied", "UnauthorizedException":
			return &CloudError{Err: fmt.Errorf("AWS IoT %s: access denied (%s): the caller needs permission iot:%s", op, ae.ErrorMessage(), op),
				Hint: fmt.Sprintf("add iot:%s to the IAM policy of the credentials in use", op)}
		case "ThrottlingException", "LimitExceededException":
			return &CloudError{Err: fmt.Errorf("AWS IoT %s: %s after retries: %s", op, ae.ErrorCode(), ae.ErrorMessage()),
				Hint: "the account's control-plane rate is low (tens of calls a second): retry later, register devices more slowly"}
		}
		return &CloudError{Err: fmt.Errorf("AWS IoT %s: %s: %s", op, ae.ErrorCode(), ae.ErrorMessage())}
	}
	return &CloudError{Err: fmt.Errorf("AWS IoT %s: %w", op, err)}
}

func isCode(err error, code string) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == code
}

// AWSOptions configure RegisterAWS and DeregisterAWS.
type AWSOptions struct {
	Client     *iot.Client
	Thing      string // default: the device's device.id
	ThingType  string // optional, must exist
	ThingGroup string // optional, must exist
	Attributes map[string]string
	PolicyName string // default DefaultPolicyName
	Key        KeyOptions
	Rotate     bool
	Wait       time.Duration
	// StateDir holds what mos created per thing (for deregister).
	StateDir string
	Status   func(string)
}

// AWSResult is what a registration did.
type AWSResult struct {
	Thing       string     `json:"thing"`
	Certificate string     `json:"certificate_arn"`
	Policy      string     `json:"policy"`
	Endpoint    string     `json:"endpoint"`
	KeyRef      string     `json:"key"`
	KeyOnDevice bool       `json:"key_on_device"`
	Steps       []Step     `json:"steps"`
	Calls       []string   `json:"aws_calls"`
	Connection  Connection `json:"connection"`
}

// awsState records what mos created for a thing, so deregister removes
// exactly that.
type awsState struct {
	Thing         string   `json:"thing"`
	ThingCreated  bool     `json:"thing_created"`
	Policy        string   `json:"policy"`
	PolicyCreated bool     `json:"policy_created"`
	GroupAdded    string   `json:"group_added,omitempty"`
	Certificates  []string `json:"certificates"` // ARNs created by mos
}

func statePath(dir, thing string) string { return filepath.Join(dir, thing+".json") }

func loadState(dir, thing string) (*awsState, error) {
	st := &awsState{Thing: thing}
	data, err := os.ReadFile(statePath(dir, thing))
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	return st, json.Unmarshal(data, st)
}

func (s *awsState) save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(statePath(dir, s.Thing), append(data, '\n'), 0o600)
}

// callLog records the AWS operations made, for the result and benchmarks.
type callLog struct {
	mu    sync.Mutex
	calls []string
}

func (c *callLog) option() func(*iot.Options) {
	return func(o *iot.Options) {
		o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
			return s.Initialize.Add(middleware.InitializeMiddlewareFunc("mosCallLog",
				func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
					c.mu.Lock()
					c.calls = append(c.calls, middleware.GetOperationName(ctx))
					c.mu.Unlock()
					return next.HandleInitialize(ctx, in)
				}), middleware.After)
		})
	}
}

func (c *callLog) list() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string{}, c.calls...)
}

// arnParts returns the region and account of an ARN
// (arn:aws:iot:REGION:ACCOUNT:cert/ID).
func arnParts(arn string) (region, account string, err error) {
	p := strings.SplitN(arn, ":", 6)
	if len(p) != 6 || p[0] != "arn" || p[3] == "" || p[4] == "" {
		return "", "", fmt.Errorf("unexpected ARN %q", arn)
	}
	return p[3], p[4], nil
}

func certIDOf(arn string) string {
	_, id, _ := strings.Cut(arn, ":cert/")
	return id
}

func parsePEMCert(s string) (*x509.Certificate, error) {
	b, _ := pem.Decode([]byte(s))
	if b == nil {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(b.Bytes)
}

// RegisterAWS registers the device as an AWS IoT thing with a certificate
// for a key that stays on the device. The calls, in order:
// CreateCertificateFromCsr (active) -> GetPolicy / CreatePolicy ->
// AttachPolicy -> DescribeThing / CreateThing -> [AddThingToThingGroup] ->
// AttachThingPrincipal -> DescribeEndpoint (iot:Data-ATS); then the
// certificate and Amazon Root CA 1 go to the device with mqtt.* and
// aws.thing_name, it reboots and is watched until it reports a connection.
// A re-run that finds the thing with an active certificate matching the
// device's key and settings makes only read calls. Rotate moves the device
// to a new certificate, then detaches and deactivates the old ones (only
// once the device is seen connected with the new one).
func RegisterAWS(ctx context.Context, dev Device, o AWSOptions) (*AWSResult, error) {
	status := o.Status
	if status == nil {
		status = func(string) {}
	}
	if o.PolicyName == "" {
		o.PolicyName = DefaultPolicyName
	}
	o.Key = o.Key.resolved()
	ref := o.Key.Ref
	log := &callLog{}
	cl, opt := o.Client, log.option()
	res := &AWSResult{Policy: o.PolicyName, KeyRef: ref, KeyOnDevice: !o.Key.HostKey, Steps: []Step{}}
	defer func() { res.Calls = log.list() }()
	step := func(name, st, detail string) {
		res.Steps = append(res.Steps, Step{Name: name, Status: st, Detail: detail})
	}

	id, err := deviceID(ctx, dev)
	if err != nil {
		return res, err
	}
	thing := o.Thing
	if thing == "" {
		thing = id
	}
	// The firmware connects with client id device.id and publishes under
	// devices/<device.id>/, and the policy allows exactly the thing's name
	// there: the two must be the same.
	if thing != id {
		return res, fmt.Errorf("thing name %q is not the device's device.id %q: the device connects and publishes as its device.id, "+
			"which the policy allows only when it is the thing name; set device.id to %q first, or leave the thing name out", thing, id, thing)
	}
	res.Thing = thing
	state, err := loadState(o.StateDir, thing)
	if err != nil {
		return res, err
	}
	state.Policy = o.PolicyName

	// What is there already (reads only).
	thingExists := true
	if _, err := cl.DescribeThing(ctx, &iot.DescribeThingInput{ThingName: aws.String(thing)}, opt); err != nil {
		if !isCode(err, "ResourceNotFoundException") {
			return res, awsErr("DescribeThing", err)
		}
		thingExists = false
	}
	var oldCerts []string
	if thingExists {
		out, err := cl.ListThingPrincipals(ctx, &iot.ListThingPrincipalsInput{ThingName: aws.String(thing)}, opt)
		if err != nil {
			return res, awsErr("ListThingPrincipals", err)
		}
		cur, err := readMQTTConfig(ctx, dev)
		if err != nil {
			return res, err
		}
		devCert := deviceCert(ctx, dev, cur.SSLCert)
		for _, p := range out.Principals {
			if !strings.Contains(p, ":cert/") {
				continue
			}
			oldCerts = append(oldCerts, p)
			if o.Rotate || o.Key.HostKey || devCert == nil || cur.SSLKey != ref || !cur.Enable {
				continue
			}
			d, err := cl.DescribeCertificate(ctx, &iot.DescribeCertificateInput{CertificateId: aws.String(certIDOf(p))}, opt)
			if err != nil {
				return res, awsErr("DescribeCertificate", err)
			}
			cd := d.CertificateDescription
			if cd == nil || cd.Status != types.CertificateStatusActive || cd.CertificatePem == nil {
				continue
			}
			c, err := parsePEMCert(*cd.CertificatePem)
			if err != nil || !c.Equal(devCert) {
				continue
			}
			pub, err := dev.PublicKey(ctx, ref)
			if err != nil || !pub.Equal(c.PublicKey) {
				continue
			}
			var thingName string
			if raw, err := dev.ConfigGet(ctx, "aws.thing_name"); err == nil {
				json.Unmarshal(raw, &thingName)
			}
			if thingName != thing {
				continue
			}
			res.Certificate = p
			res.Endpoint, _, _ = net.SplitHostPort(cur.Server)
			step("certificate", "skipped", "the thing has an active certificate for the device's key: "+p)
			status("already registered: thing " + thing + ", certificate " + certIDOf(p))
			conn, err := WaitConnected(ctx, dev, cur.Server, o.Wait)
			res.Connection = conn
			return res, err
		}
	}

	csr, pub, hostKey, err := makeCSR(ctx, dev, o.Key, thing, status)
	if err != nil {
		return res, err
	}
	step("key", "done", keyDetail(o.Key))
	csrPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr.Raw})

	status("CreateCertificateFromCsr")
	cc, err := cl.CreateCertificateFromCsr(ctx, &iot.CreateCertificateFromCsrInput{
		CertificateSigningRequest: aws.String(string(csrPEM)), SetAsActive: true}, opt)
	if err != nil {
		return res, awsErr("CreateCertificateFromCsr", err)
	}
	certArn := aws.ToString(cc.CertificateArn)
	state.Certificates = append(state.Certificates, certArn)
	if err := state.save(o.StateDir); err != nil {
		return res, err
	}
	cert, err := parsePEMCert(aws.ToString(cc.CertificatePem))
	if err != nil {
		return res, fmt.Errorf("certificate from CreateCertificateFromCsr: %w", err)
	}
	// Never put on the device a certificate for another key.
	if cp, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || !cp.Equal(pub) {
		// Deactivate it so it cannot be used; deregister deletes it.
		cl.UpdateCertificate(ctx, &iot.UpdateCertificateInput{CertificateId: cc.CertificateId, NewStatus: types.CertificateStatusInactive}, opt)
		return res, fmt.Errorf("the certificate AWS returned (%s) does not carry the device's public key: not written to the device", certArn)
	}
	res.Certificate = certArn
	step("certificate", "done", certArn)
	region, account, err := arnParts(certArn)
	if err != nil {
		return res, err
	}

	doc, err := PolicyDocument(region, account)
	if err != nil {
		return res, err
	}
	if gp, err := cl.GetPolicy(ctx, &iot.GetPolicyInput{PolicyName: aws.String(o.PolicyName)}, opt); err == nil {
		if !sameJSON(aws.ToString(gp.PolicyDocument), doc) {
			status(fmt.Sprintf("WARNING: policy %s exists with another document than mos writes; it is used as it is", o.PolicyName))
		}
		step("policy", "skipped", o.PolicyName+" exists")
	} else if isCode(err, "ResourceNotFoundException") {
		if _, err := cl.CreatePolicy(ctx, &iot.CreatePolicyInput{PolicyName: aws.String(o.PolicyName), PolicyDocument: aws.String(doc)}, opt); err != nil && !isCode(err, "ResourceAlreadyExistsException") {
			return res, awsErr("CreatePolicy", err)
		} else if err == nil {
			state.PolicyCreated = true
			if err := state.save(o.StateDir); err != nil {
				return res, err
			}
		}
		step("policy", "done", o.PolicyName+" created (least privilege, per-thing policy variables)")
	} else {
		return res, awsErr("GetPolicy", err)
	}
	if _, err := cl.AttachPolicy(ctx, &iot.AttachPolicyInput{PolicyName: aws.String(o.PolicyName), Target: aws.String(certArn)}, opt); err != nil {
		return res, awsErr("AttachPolicy", err)
	}

	if !thingExists {
		in := &iot.CreateThingInput{ThingName: aws.String(thing)}
		if o.ThingType != "" {
			in.ThingTypeName = aws.String(o.ThingType)
		}
		if len(o.Attributes) > 0 {
			in.AttributePayload = &types.AttributePayload{Attributes: o.Attributes}
		}
		if _, err := cl.CreateThing(ctx, in, opt); err != nil && !isCode(err, "ResourceAlreadyExistsException") {
			return res, awsErr("CreateThing", err)
		} else if err == nil {
			state.ThingCreated = true
			if err := state.save(o.StateDir); err != nil {
				return res, err
			}
		}
		step("thing", "done", thing+" created")
	} else {
		step("thing", "skipped", thing+" exists")
	}
	if o.ThingGroup != "" && state.GroupAdded != o.ThingGroup {
		if _, err := cl.AddThingToThingGroup(ctx, &iot.AddThingToThingGroupInput{ThingName: aws.String(thing), ThingGroupName: aws.String(o.ThingGroup)}, opt); err != nil {
			return res, awsErr("AddThingToThingGroup", err)
		}
		state.GroupAdded = o.ThingGroup
		if err := state.save(o.StateDir); err != nil {
			return res, err
		}
	}
	if _, err := cl.AttachThingPrincipal(ctx, &iot.AttachThingPrincipalInput{ThingName: aws.String(thing), Principal: aws.String(certArn)}, opt); err != nil {
		return res, awsErr("AttachThingPrincipal", err)
	}
	ep, err := cl.DescribeEndpoint(ctx, &iot.DescribeEndpointInput{EndpointType: aws.String("iot:Data-ATS")}, opt)
	if err != nil {
		return res, awsErr("DescribeEndpoint", err)
	}
	res.Endpoint = aws.ToString(ep.EndpointAddress)
	if res.Endpoint == "" {
		return res, errors.New("DescribeEndpoint returned no address")
	}
	server := net.JoinHostPort(res.Endpoint, awsMQTTPort)

	files := []deviceFile{{CertFile, []byte(aws.ToString(cc.CertificatePem))}, {AWSCAFile, AmazonRootCA1}}
	if hostKey != nil {
		files = append(files, deviceFile{HostKeyRef, hostKey})
	}
	values := map[string]any{
		"mqtt.enable":      true,
		"mqtt.server":      server,
		"mqtt.ssl_cert":    CertFile,
		"mqtt.ssl_key":     ref,
		"mqtt.ssl_ca_cert": AWSCAFile,
		"aws.thing_name":   thing,
	}
	if err := install(ctx, dev, files, values, status); err != nil {
		return res, err
	}
	step("device", "done", "certificate, Amazon Root CA 1, mqtt.* and aws.thing_name written; rebooted")
	if o.Wait > 0 {
		status(fmt.Sprintf("waiting up to %s for the device to connect to %s", o.Wait, server))
	}
	conn, err := WaitConnected(ctx, dev, server, o.Wait)
	res.Connection = conn
	if err != nil {
		return res, err
	}
	// Retire the previous certificates only once the new one is proven.
	if o.Rotate && len(oldCerts) > 0 {
		if !conn.Proven {
			status("WARNING: --rotate with --wait 0: the old certificates stay active, since the new one is not proven")
			return res, nil
		}
		for _, old := range oldCerts {
			// Only certificates mos issued for this device are retired;
			// others attached to the thing are someone else's to manage.
			if old == certArn || !slices.Contains(state.Certificates, old) {
				continue
			}
			if _, err := cl.DetachThingPrincipal(ctx, &iot.DetachThingPrincipalInput{ThingName: aws.String(thing), Principal: aws.String(old)}, opt); err != nil {
				return res, awsErr("DetachThingPrincipal", err)
			}
			if _, err := cl.UpdateCertificate(ctx, &iot.UpdateCertificateInput{CertificateId: aws.String(certIDOf(old)), NewStatus: types.CertificateStatusInactive}, opt); err != nil {
				return res, awsErr("UpdateCertificate", err)
			}
			step("rotate", "done", "old certificate detached and deactivated: "+old)
		}
	}
	return res, nil
}

func sameJSON(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return string(xb) == string(yb)
}

// DeregisterResult is what DeregisterAWS undid.
type DeregisterResult struct {
	Thing  string   `json:"thing"`
	Undone []string `json:"undone"`
	Left   []string `json:"left"`
	Calls  []string `json:"aws_calls"`
}

// DeregisterAWS undoes what RegisterAWS created for the thing, and nothing
// else: each certificate mos created is detached from the thing and the
// policy, deactivated and deleted; the thing is deleted only if mos
// created it; the shared policy only if mos created it and no certificate
// uses it any more. It needs no device.
func DeregisterAWS(ctx context.Context, thing string, o AWSOptions) (*DeregisterResult, error) {
	if o.PolicyName == "" {
		o.PolicyName = DefaultPolicyName
	}
	log := &callLog{}
	cl, opt := o.Client, log.option()
	res := &DeregisterResult{Thing: thing, Undone: []string{}, Left: []string{}}
	defer func() { res.Calls = log.list() }()
	state, err := loadState(o.StateDir, thing)
	if err != nil {
		return res, err
	}
	if len(state.Certificates) == 0 && !state.ThingCreated && !state.PolicyCreated && state.GroupAdded == "" {
		return res, fmt.Errorf("nothing recorded as created by mos for thing %q (in %s): nothing to undo", thing, o.StateDir)
	}
	policy := state.Policy
	if policy == "" {
		policy = o.PolicyName
	}
	ignoreGone := func(err error) bool { return err == nil || isCode(err, "ResourceNotFoundException") }
	for _, arn := range state.Certificates {
		id := certIDOf(arn)
		if _, err := cl.DetachThingPrincipal(ctx, &iot.DetachThingPrincipalInput{ThingName: aws.String(thing), Principal: aws.String(arn)}, opt); !ignoreGone(err) {
			return res, awsErr("DetachThingPrincipal", err)
		}
		if _, err := cl.DetachPolicy(ctx, &iot.DetachPolicyInput{PolicyName: aws.String(policy), Target: aws.String(arn)}, opt); !ignoreGone(err) {
			return res, awsErr("DetachPolicy", err)
		}
		if _, err := cl.UpdateCertificate(ctx, &iot.UpdateCertificateInput{CertificateId: aws.String(id), NewStatus: types.CertificateStatusInactive}, opt); !ignoreGone(err) {
			return res, awsErr("UpdateCertificate", err)
		}
		if _, err := cl.DeleteCertificate(ctx, &iot.DeleteCertificateInput{CertificateId: aws.String(id)}, opt); !ignoreGone(err) {
			return res, awsErr("DeleteCertificate", err)
		}
		res.Undone = append(res.Undone, "certificate "+arn+" detached, deactivated and deleted")
		state.Certificates = state.Certificates[1:]
		if err := state.save(o.StateDir); err != nil {
			return res, err
		}
	}
	// A thing mos created leaves its groups when deleted; one that
	// existed before is taken out of the group mos put it in.
	if state.GroupAdded != "" && !state.ThingCreated {
		if _, err := cl.RemoveThingFromThingGroup(ctx, &iot.RemoveThingFromThingGroupInput{ThingName: aws.String(thing), ThingGroupName: aws.String(state.GroupAdded)}, opt); !ignoreGone(err) {
			return res, awsErr("RemoveThingFromThingGroup", err)
		}
		res.Undone = append(res.Undone, "thing "+thing+" removed from group "+state.GroupAdded)
		state.GroupAdded = ""
		if err := state.save(o.StateDir); err != nil {
			return res, err
		}
	}
	if state.ThingCreated {
		if _, err := cl.DeleteThing(ctx, &iot.DeleteThingInput{ThingName: aws.String(thing)}, opt); !ignoreGone(err) {
			return res, awsErr("DeleteThing", err)
		}
		res.Undone = append(res.Undone, "thing "+thing+" deleted")
		state.ThingCreated = false
	} else {
		res.Left = append(res.Left, "thing "+thing+" (it existed before mos registered it)")
	}
	if state.PolicyCreated {
		tg, err := cl.ListTargetsForPolicy(ctx, &iot.ListTargetsForPolicyInput{PolicyName: aws.String(policy)}, opt)
		switch {
		case err != nil && !isCode(err, "ResourceNotFoundException"):
			return res, awsErr("ListTargetsForPolicy", err)
		case err == nil && len(tg.Targets) > 0:
			res.Left = append(res.Left, fmt.Sprintf("policy %s (still attached to %d other certificates)", policy, len(tg.Targets)))
		default:
			if _, err := cl.DeletePolicy(ctx, &iot.DeletePolicyInput{PolicyName: aws.String(policy)}, opt); !ignoreGone(err) {
				return res, awsErr("DeletePolicy", err)
			}
			res.Undone = append(res.Undone, "policy "+policy+" deleted")
			state.PolicyCreated = false
		}
	}
	state.GroupAdded = ""
	if !state.PolicyCreated && !state.ThingCreated && len(state.Certificates) == 0 {
		os.Remove(statePath(o.StateDir, thing))
	} else if err := state.save(o.StateDir); err != nil {
		return res, err
	}
	return res, nil
}
