package share_test

import (
	"context"
	"fmt"

	"github.com/mos-tool/mos/port"
	"github.com/mos-tool/mos/port/share"
)

// How a console lends the port it shows. Events reach its UI through
// the hooks; it reads and writes through l.Port() only. (Compiled, not
// run: it would use the user's own sharing directory.)
func ExampleOffer() {
	ctx := context.Background()
	// OpenDirect: the console must not borrow from a console (its own
	// endpoint, when it reopens a port that came back).
	p, err := port.OpenDirect(ctx, "sim://esp32?fast=1", 115200)
	if err != nil {
		fmt.Println(err)
		return
	}
	l, err := share.Offer(ctx, p, share.Hooks{
		OnBorrow: func(b share.Borrower) { /* show "paused: <b> has the port" */ },
		OnReturn: func(s share.Summary) { /* show s.String(), resume */ },
	})
	if err != nil {
		// Not fatal for a console: it runs without lending.
		fmt.Println(err)
		p.Close()
		return
	}
	lp := l.Port() // from now on, instead of p
	defer lp.Close()
	// ... the console's reader and input line use lp; when the port
	// fails, it closes lp, reopens with OpenDirect and offers again ...
	_ = lp
}
