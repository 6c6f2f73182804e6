package cloud

import (
	"encoding/json"
	"fmt"
)

// DefaultPolicyName is the one policy all devices registered by mos share:
// its policy variables make it per device.
const DefaultPolicyName = "mos-device"

// PolicyDocument is the least-privilege policy for devices: connect only
// with the client id of its own thing name, publish and receive only on
// its own topics (devices/<thing>/... as the firmware uses, and the
// thing's shadow), subscribe only to the matching filters. The thing name
// comes from the policy variable iot:Connection.Thing.ThingName, which AWS
// IoT sets from the thing the connecting certificate is attached to (AWS
// IoT developer guide, "Thing policy variables"). No iot:* and no "*"
// resource.
func PolicyDocument(region, account string) (string, error) {
	if region == "" || account == "" {
		return "", fmt.Errorf("policy needs the region and account (have %q, %q)", region, account)
	}
	arn := func(kind, rest string) string {
		return fmt.Sprintf("arn:aws:iot:%s:%s:%s/%s", region, account, kind, rest)
	}
	const thing = "${iot:Connection.Thing.ThingName}"
	type stmt struct {
		Effect   string   `json:"Effect"`
		Action   []string `json:"Action"`
		Resource []string `json:"Resource"`
	}
	doc := struct {
		Version   string `json:"Version"`
		Statement []stmt `json:"Statement"`
	}{
		Version: "2012-10-17",
		Statement: []stmt{
			{"Allow", []string{"iot:Connect"}, []string{arn("client", thing)}},
			{"Allow", []string{"iot:Publish", "iot:Receive"}, []string{
				arn("topic", "devices/"+thing+"/*"),
				arn("topic", "$aws/things/"+thing+"/shadow/*"),
			}},
			{"Allow", []string{"iot:Subscribe"}, []string{
				arn("topicfilter", "devices/"+thing+"/*"),
				arn("topicfilter", "$aws/things/"+thing+"/shadow/*"),
			}},
		},
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	return string(b), err
}
