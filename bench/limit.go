package main

import (
	"time"

	"github.com/mos-tool/mos/sim"
)

// limit is the least time any flasher could take once connected: the UART
// must carry the compressed image, and the flash must erase and program
// the region. A perfect flasher overlaps the two, so the larger one bounds
// it. Connect, stub upload and verification are left out on purpose: the
// ratio ours/limit shows what they cost.
type limit struct {
	wire  time.Duration // compressed bytes x 10 bit times
	flash time.Duration // erase + page programs, typical datasheet times
}

func (l limit) max() time.Duration { return max(l.wire, l.flash) }

func (l limit) bound() string {
	if l.wire >= l.flash {
		return "wire"
	}
	return "flash"
}

func physicalLimit(addr uint32, size, compressed, baud int) limit {
	return limit{
		wire:  wireTime(compressed, baud),
		flash: flashTime(addr, size),
	}
}

// flashTime models writing size bytes at addr on a blank part with
// sim.DefaultFlashTimings: 64 KiB block erases where a whole aligned block
// is covered, 4 KiB sector erases at partial ends, one page program per
// 256-byte page touched.
func flashTime(addr uint32, size int) time.Duration {
	t := sim.DefaultFlashTimings()
	end := addr + uint32(size)
	var d time.Duration
	for a, e := addr&^(sim.FlashSectorSize-1), alignUp(end, sim.FlashSectorSize); a < e; {
		if a%sim.FlashBlockSize == 0 && e-a >= sim.FlashBlockSize {
			d += t.BlockErase
			a += sim.FlashBlockSize
		} else {
			d += t.SectorErase
			a += sim.FlashSectorSize
		}
	}
	pages := alignUp(end, sim.FlashPageSize)/sim.FlashPageSize - addr/sim.FlashPageSize
	return d + time.Duration(pages)*t.PageProgram
}

func alignUp(v, a uint32) uint32 { return (v + a - 1) / a * a }

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
