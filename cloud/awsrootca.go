package cloud

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/pem"
	"fmt"
)

// AmazonRootCA1 is the trust anchor of AWS IoT's ATS endpoints
// (iot:Data-ATS). The file is mozilla/Amazon_Root_CA_1.crt from Debian's
// ca-certificates package, version 20230311+deb12u1 (bookworm), copied
// unchanged; it is embedded so registration downloads nothing.
//
// SHA-256 fingerprint, as Amazon publishes it:
// 8E:CD:E6:88:4F:3D:87:B1:12:5B:A3:1A:C3:FC:B1:3D:70:16:DE:7F:57:CC:90:4F:E1:CB:97:C6:AE:98:19:6E
//
//go:embed AmazonRootCA1.pem
var AmazonRootCA1 []byte

const amazonRootCA1SHA256 = "8ecde6884f3d87b1125ba31ac3fcb13d7016de7f57cc904fe1cb97c6ae98196e"

// checkRootCA makes sure the embedded file is the certificate it claims to
// be; run by a test.
func checkRootCA() error {
	b, _ := pem.Decode(AmazonRootCA1)
	if b == nil {
		return fmt.Errorf("AmazonRootCA1.pem holds no PEM block")
	}
	sum := sha256.Sum256(b.Bytes)
	if got := hex.EncodeToString(sum[:]); got != amazonRootCA1SHA256 {
		return fmt.Errorf("AmazonRootCA1.pem fingerprint %s, want %s", got, amazonRootCA1SHA256)
	}
	return nil
}
