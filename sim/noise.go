package sim

import (
	"fmt"
	"math/rand"
	"strconv"
	"strings"
)

// Noise makes the virtual wire unreliable, as a long or badly shielded
// cable is: at a matching baud rate, each byte is, with probability Rate,
// either corrupted (one bit flipped) or lost (the receiver missed its
// start bit). It exists so that checksum failures, lost replies and the
// host's recovery are tested through the real code path. The same Seed
// and the same traffic give the same errors.
type Noise struct {
	Rate float64 // probability of an error per byte, 0 (clean) to 1
	Seed int64
	// Dir is the direction affected: "both" (default), "to-host" (the
	// device's replies) or "to-device" (the host's commands).
	Dir string
	// MinBaud limits the errors to rates at or above it (0: every rate),
	// as a marginal cable works at 115200 and fails at 921600.
	MinBaud int
}

// ParseNoise reads the sim:// option noise=RATE[,seed=N][,dir=D][,baud=N],
// e.g. noise=0.001,seed=7,dir=to-host,baud=460800.
func ParseNoise(s string) (Noise, error) {
	n := Noise{Seed: 1, Dir: "both"}
	parts := strings.Split(s, ",")
	r, err := strconv.ParseFloat(parts[0], 64)
	if err != nil || r < 0 || r > 1 {
		return n, fmt.Errorf("sim: bad noise rate %q (a probability per byte, e.g. noise=0.001)", parts[0])
	}
	n.Rate = r
	for _, p := range parts[1:] {
		k, v, _ := strings.Cut(p, "=")
		switch k {
		case "seed":
			if n.Seed, err = strconv.ParseInt(v, 10, 64); err != nil {
				return n, fmt.Errorf("sim: bad noise seed %q", v)
			}
		case "dir":
			switch v {
			case "both", "to-host", "to-device":
				n.Dir = v
			default:
				return n, fmt.Errorf("sim: bad noise direction %q (both, to-host, to-device)", v)
			}
		case "baud":
			if n.MinBaud, err = strconv.Atoi(v); err != nil || n.MinBaud < 0 {
				return n, fmt.Errorf("sim: bad noise baud %q", v)
			}
		default:
			return n, fmt.Errorf("sim: unknown noise setting %q (seed, dir, baud)", k)
		}
	}
	return n, nil
}

// SetNoise changes the wire's noise from now on (a zero Noise: clean).
func (d *Device) SetNoise(n Noise) {
	toHost, toDev := n.Dir != "to-device", n.Dir != "to-host"
	d.toHost.setNoise(n, toHost, 0)
	d.toDev.setNoise(n, toDev, 1)
}

// noiser is one direction's share of the noise.
type noiser struct {
	rate    float64
	minBaud int
	rng     *rand.Rand
}

func (l *line) setNoise(n Noise, on bool, salt int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !on || n.Rate <= 0 {
		l.noise = nil
		return
	}
	// each direction draws from its own stream, so that the errors on one
	// do not depend on how the two interleave in time
	l.noise = &noiser{rate: n.Rate, minBaud: n.MinBaud, rng: rand.New(rand.NewSource(n.Seed*2 + salt))}
}

// apply returns what arrives of p sent at baud.
func (z *noiser) apply(p []byte, baud int) []byte {
	if z == nil || baud < z.minBaud {
		return p
	}
	var out []byte
	for i, b := range p {
		if z.rng.Float64() >= z.rate {
			if out != nil {
				out = append(out, b)
			}
			continue
		}
		if out == nil {
			out = append(make([]byte, 0, len(p)), p[:i]...)
		}
		if z.rng.Intn(2) == 0 {
			out = append(out, b^(1<<z.rng.Intn(8)))
		} // else the byte is lost
	}
	if out == nil {
		return p
	}
	return out
}
