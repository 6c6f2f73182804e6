// Package tmuxtest runs `mos console` in a real terminal (tmux) against the
// virtual device served by `mos sim serve`, and drives it with keys as a
// person would. It holds only tests.
package tmuxtest
