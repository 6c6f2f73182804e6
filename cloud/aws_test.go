package cloud

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/iot"
)

// awsEnv points the SDK at test credentials and nothing else of this
// machine (no shared files, no instance metadata).
func awsEnv(t testing.TB) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_REGION", fakeRegion)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ENDPOINT_URL", "")
	t.Setenv("AWS_ENDPOINT_URL_IOT", "")
	t.Setenv("AWS_PROFILE", "")
}

func awsSetup(t testing.TB, id string) (*fakeIoT, *fakeDevice, AWSOptions) {
	t.Helper()
	awsEnv(t)
	f := newFakeIoT(t)
	cl, err := NewIoTClient(context.Background(), AWSClientOptions{EndpointURL: f.srv.URL, MaxAttempts: 4})
	if err != nil {
		t.Fatal(err)
	}
	dev := newFakeDevice(id)
	dev.dataPlane = f.dataPlane
	return f, dev, AWSOptions{Client: cl, Wait: 5 * time.Second, StateDir: t.TempDir()}
}

func TestRegisterAWS(t *testing.T) {
	f, dev, o := awsSetup(t, "esp32-aa01")
	ctx := context.Background()
	res, err := RegisterAWS(ctx, dev, o)
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	wantWrites := []string{
		"POST /certificates", "POST /policies/mos-device", "PUT /target-policies/mos-device",
		"POST /things/esp32-aa01", "PUT /things/esp32-aa01/principals",
	}
	if got := f.writes(); !slices.Equal(got, wantWrites) {
		t.Fatalf("write calls:\n got %q\nwant %q", got, wantWrites)
	}
	if !res.Connection.Proven || res.Endpoint != fakeEndpoint || dev.config["aws.thing_name"] != "esp32-aa01" ||
		dev.config["mqtt.server"] != fakeEndpoint+":8883" || string(dev.files[AWSCAFile]) != string(AmazonRootCA1) {
		t.Fatalf("result %+v, device config %v", res, dev.config)
	}
	if dev.signs == 0 || strings.Contains(string(dev.files[CertFile]), "PRIVATE") {
		t.Fatal("CSR not signed on the device, or a key in the certificate file")
	}
	doc := f.policies["mos-device"]
	for _, want := range []string{"client/${iot:Connection.Thing.ThingName}", "topic/devices/${iot:Connection.Thing.ThingName}/*",
		"topicfilter/$aws/things/${iot:Connection.Thing.ThingName}/shadow/*", "arn:aws:iot:" + fakeRegion + ":" + fakeAccount} {
		if !strings.Contains(doc, want) {
			t.Errorf("policy lacks %q:\n%s", want, doc)
		}
	}
	if strings.Contains(doc, `"*"`) || strings.Contains(doc, "iot:*") {
		t.Errorf("policy too wide:\n%s", doc)
	}
	firstCalls := len(res.Calls)

	// A re-run makes only reads and changes nothing on the device.
	f.calls = nil
	puts, sets := len(dev.puts), dev.sets
	res2, err := RegisterAWS(ctx, dev, o)
	if err != nil {
		t.Fatalf("re-run: %v", err)
	}
	if w := f.writes(); len(w) != 0 || len(dev.puts) != puts || dev.sets != sets || !res2.Connection.Proven {
		t.Fatalf("re-run wrote %q (device puts %d->%d)", w, puts, len(dev.puts))
	}
	t.Logf("AWS calls: first run %d %v, re-run %d %v", firstCalls, res.Calls, len(res2.Calls), res2.Calls)

	// --rotate: a new certificate, the old one detached and deactivated.
	o.Rotate = true
	res3, err := RegisterAWS(ctx, dev, o)
	if err != nil {
		t.Fatalf("rotate: %v", err)
	}
	if res3.Certificate == res.Certificate || !res3.Connection.Proven {
		t.Fatalf("rotate: %+v", res3)
	}
	if st := f.certs[certIDOf(res.Certificate)].status; st != "INACTIVE" || f.things["esp32-aa01"][res.Certificate] {
		t.Fatalf("old certificate: status %s, attached %v", st, f.things["esp32-aa01"][res.Certificate])
	}

	// Deregister undoes it all: both certificates, the thing, the policy.
	dr, err := DeregisterAWS(ctx, "esp32-aa01", o)
	if err != nil {
		t.Fatalf("deregister: %v", err)
	}
	if len(f.certs) != 0 || len(f.things) != 0 || len(f.policies) != 0 {
		t.Fatalf("left in AWS: certs %d things %v policies %v (undone %q)", len(f.certs), f.things, f.policies, dr.Undone)
	}
	if _, err := DeregisterAWS(ctx, "esp32-aa01", o); err == nil {
		t.Fatal("second deregister found something to undo")
	}
}

func TestDeregisterLeavesWhatExisted(t *testing.T) {
	f, dev, o := awsSetup(t, "esp32-aa02")
	f.things["esp32-aa02"] = map[string]bool{}
	f.groups["line-1"] = []string{"someone-else"}
	o.ThingGroup = "line-1"
	f.policies["mos-device"] = `{"Version":"2012-10-17","Statement":[]}`
	other := "arn:aws:iot:eu-west-1:123456789012:cert/other"
	f.attached["mos-device"] = map[string]bool{other: true}
	if _, err := RegisterAWS(context.Background(), dev, o); err != nil {
		t.Fatal(err)
	}
	dr, err := DeregisterAWS(context.Background(), "esp32-aa02", o)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := f.things["esp32-aa02"]; !ok {
		t.Error("deregister deleted a thing it did not create")
	}
	if _, ok := f.policies["mos-device"]; !ok || !f.attached["mos-device"][other] {
		t.Error("deregister touched a policy it did not create")
	}
	if len(f.certs) != 0 {
		t.Errorf("its own certificate is left: %v", f.certs)
	}
	if !slices.Equal(f.groups["line-1"], []string{"someone-else"}) {
		t.Errorf("group membership mos added is left, or another's removed: %v", f.groups["line-1"])
	}
	if len(dr.Left) < 1 {
		t.Errorf("result does not say what was left: %+v", dr)
	}
}

func TestRegisterAWSErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(f *fakeIoT)
		want  string
	}{
		{"access denied names the permission", func(f *fakeIoT) { f.deny["PUT /target-policies/mos-device"] = true }, "AttachPolicy: access denied"},
		{"throttling past the retries", func(f *fakeIoT) { f.throttle["POST /things/esp32-aa03"] = 100 }, "ThrottlingException after retries"},
		{"certificate for another key", func(f *fakeIoT) { f.wrongKey = true }, "does not carry the device's public key"},
		{"thing name other than device.id", func(*fakeIoT) {}, "is not the device's device.id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, dev, o := awsSetup(t, "esp32-aa03")
			tt.setup(f)
			if strings.HasPrefix(tt.name, "thing name") {
				o.Thing = "other-thing"
			}
			_, err := RegisterAWS(context.Background(), dev, o)
			var ce *CloudError
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want %q", err, tt.want)
			}
			if strings.Contains(tt.want, "denied") && (!errors.As(err, &ce) || !strings.Contains(err.Error(), "iot:AttachPolicy")) {
				t.Fatalf("denied error does not name iot:AttachPolicy: %v", err)
			}
			if _, ok := dev.files[CertFile]; ok {
				t.Error("a certificate was written to the device despite the failure")
			}
		})
	}
}

func TestRegisterAWSRetriesThrottling(t *testing.T) {
	f, dev, o := awsSetup(t, "esp32-aa04")
	f.throttle["POST /things/esp32-aa04"] = 2
	res, err := RegisterAWS(context.Background(), dev, o)
	if err != nil {
		t.Fatalf("throttled twice, then fine: %v", err)
	}
	n := 0
	for _, c := range f.calls {
		if c == "POST /things/esp32-aa04" {
			n++
		}
	}
	if n != 3 || !res.Connection.Proven {
		t.Fatalf("CreateThing sent %d times (want 3: two throttled, one retried)", n)
	}
}

func TestIoTClientEndpointAndCredentials(t *testing.T) {
	t.Run("AWS_ENDPOINT_URL_IOT", func(t *testing.T) {
		awsEnv(t)
		f := newFakeIoT(t)
		t.Setenv("AWS_ENDPOINT_URL_IOT", f.srv.URL)
		cl, err := NewIoTClient(context.Background(), AWSClientOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out, err := cl.DescribeEndpoint(context.Background(), &iot.DescribeEndpointInput{EndpointType: strPtr("iot:Data-ATS")})
		if err != nil || *out.EndpointAddress != fakeEndpoint {
			t.Fatalf("via AWS_ENDPOINT_URL_IOT: %v", err)
		}
	})
	t.Run("no credentials", func(t *testing.T) {
		awsEnv(t)
		t.Setenv("AWS_ACCESS_KEY_ID", "")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "")
		_, err := NewIoTClient(context.Background(), AWSClientOptions{EndpointURL: "http://127.0.0.1:1"})
		var ce *CloudError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), "no AWS credentials") || !strings.Contains(ce.Hint, "AWS_PROFILE") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("no region", func(t *testing.T) {
		awsEnv(t)
		t.Setenv("AWS_REGION", "")
		t.Setenv("AWS_DEFAULT_REGION", "")
		if _, err := NewIoTClient(context.Background(), AWSClientOptions{}); err == nil || !strings.Contains(err.Error(), "--region") {
			t.Fatalf("err %v", err)
		}
	})
}

func strPtr(s string) *string { return &s }

func TestAmazonRootCA1(t *testing.T) {
	if err := checkRootCA(); err != nil {
		t.Fatal(err)
	}
}

func TestRegisterAWSThingTypeGroupAttributes(t *testing.T) {
	f, dev, o := awsSetup(t, "esp32-aa05")
	f.types["sensor"] = true
	f.groups["line-3"] = nil
	o.ThingType, o.ThingGroup, o.Attributes = "sensor", "line-3", map[string]string{"batch": "2026-12"}
	if _, err := RegisterAWS(context.Background(), dev, o); err != nil {
		t.Fatal(err)
	}
	if f.attrs["esp32-aa05"]["batch"] != "2026-12" || !slices.Equal(f.groups["line-3"], []string{"esp32-aa05"}) {
		t.Fatalf("attributes %v, group %v", f.attrs, f.groups)
	}
	f.calls = nil
	if _, err := RegisterAWS(context.Background(), dev, o); err != nil || len(f.writes()) != 0 {
		t.Fatalf("re-run: %v, writes %q", err, f.writes())
	}

	_, dev2, o2 := awsSetup(t, "esp32-aa06")
	o2.ThingGroup = "no-such-group"
	if _, err := RegisterAWS(context.Background(), dev2, o2); err == nil || !strings.Contains(err.Error(), "AddThingToThingGroup") {
		t.Fatalf("missing group: %v", err)
	}
}
