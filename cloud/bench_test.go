package cloud

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// The registration benchmarks run the host side against a stand-in
// device (fakeDevice: real keys and a real MQTT connection to the embedded
// broker for MQTT; for AWS, the local IoT endpoint and its data-plane
// check). They measure mos's own work and count the AWS calls; the virtual
// device's RPC time is not in them.

func BenchmarkRegisterMQTT(b *testing.B) {
	c, addr, _ := fleetBroker(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dev := newFakeDevice(fmt.Sprintf("bench-%d", i))
		if _, err := RegisterMQTT(context.Background(), dev, MQTTOptions{Broker: addr, CA: c, Wait: 10 * time.Second}); err != nil {
			b.Fatal(err)
		}
		dev.close()
	}
}

func BenchmarkRegisterAWS(b *testing.B) {
	for _, rerun := range []bool{false, true} {
		name := "first"
		if rerun {
			name = "rerun"
		}
		b.Run(name, func(b *testing.B) {
			f, _, o := awsSetup(b, "bench-0")
			calls := 0
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				dev := newFakeDevice(fmt.Sprintf("bench-%s-%d", name, i))
				dev.dataPlane = f.dataPlane
				if rerun {
					if _, err := RegisterAWS(context.Background(), dev, o); err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
				res, err := RegisterAWS(context.Background(), dev, o)
				if err != nil {
					b.Fatal(err)
				}
				calls += len(res.Calls)
			}
			b.ReportMetric(float64(calls)/float64(b.N), "aws-calls/op")
		})
	}
}
