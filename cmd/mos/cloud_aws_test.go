package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mos-tool/mos/output"
)

// awsTestEnv keeps the SDK away from this machine's AWS setup.
func awsTestEnv(t *testing.T) {
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_REGION": "eu-west-1",
		"AWS_CONFIG_FILE": filepath.Join(t.TempDir(), "none"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(t.TempDir(), "none"),
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_IOT": "", "AWS_PROFILE": "",
	} {
		t.Setenv(k, v)
	}
}

func TestAWSDeregisterErrors(t *testing.T) {
	denied := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Amzn-ErrorType", "AccessDeniedException")
		w.WriteHeader(403)
		json.NewEncoder(w).Encode(map[string]string{"message": "not authorized to perform this action"})
	}))
	defer denied.Close()
	state := t.TempDir()
	os.WriteFile(filepath.Join(state, "esp32-0c0c.json"),
		[]byte(`{"thing":"esp32-0c0c","thing_created":true,"policy":"mos-device","certificates":["arn:aws:iot:eu-west-1:123456789012:cert/abc"]}`), 0o600)

	tests := []struct {
		name     string
		env      map[string]string
		args     []string
		code     int
		contains []string
	}{
		{"denied call names the permission", nil, []string{"--endpoint-url", denied.URL}, output.ExitCloud,
			[]string{"DetachThingPrincipal: access denied", "iot:DetachThingPrincipal"}},
		{"no credentials", map[string]string{"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}, []string{"--endpoint-url", denied.URL}, output.ExitCloud,
			[]string{"no AWS credentials", "AWS_PROFILE"}},
		{"nothing recorded", nil, []string{"--endpoint-url", denied.URL, "--state-dir", t.TempDir()}, output.ExitFailure,
			[]string{"nothing recorded as created by mos"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			awsTestEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			args := append([]string{"cloud", "aws", "deregister", "esp32-0c0c", "--state-dir", state}, tt.args...)
			r := mos{}.run(t, args...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\n%s%s", r.code, tt.code, r.stdout, r.stderr)
			}
			for _, c := range tt.contains {
				if !strings.Contains(r.stderr, c) {
					t.Errorf("stderr lacks %q:\n%s", c, r.stderr)
				}
			}
		})
	}
}
