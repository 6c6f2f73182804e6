package console

import (
	"io"

	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
)

type styles struct {
	level    map[Level]lipgloss.Style
	dim      lipgloss.Style
	tag      []lipgloss.Style
	match    lipgloss.Style
	current  lipgloss.Style
	annot    lipgloss.Style
	rpc      lipgloss.Style
	bar      lipgloss.Style
	ok, warn lipgloss.Style
	bad      lipgloss.Style
	help     lipgloss.Style
	helpKey  lipgloss.Style
}

// newStyles builds the styles for a colour profile. With noColor (the
// NO_COLOR convention) no colour is used, but reverse video and bold still
// mark search matches and the status bar: NO_COLOR forbids colour, not
// emphasis. termenv.Ascii gives plain text (used by the golden tests).
func newStyles(profile termenv.Profile, noColor bool) styles {
	r := lipgloss.NewRenderer(io.Discard)
	if noColor && profile == termenv.Ascii {
		profile = termenv.ANSI
	}
	r.SetColorProfile(profile)
	s := r.NewStyle
	fg := func(c string) lipgloss.Style {
		if noColor {
			return s()
		}
		return s().Foreground(lipgloss.Color(c))
	}
	st := styles{
		level: map[Level]lipgloss.Style{
			LevelError: fg("9"),
			LevelWarn:  fg("11"),
			LevelInfo:  fg("10"),
			LevelDebug: fg("8"),
			LevelBoot:  fg("14"),
		},
		dim:     fg("8"),
		match:   s().Reverse(true),
		current: s().Reverse(true).Bold(true),
		annot:   fg("13"),
		rpc:     fg("12"),
		bar:     s().Reverse(true),
		ok:      fg("2").Reverse(true),
		warn:    fg("3").Reverse(true),
		bad:     fg("1").Reverse(true),
		help:    s().Border(lipgloss.RoundedBorder()).Padding(0, 1),
		helpKey: s().Bold(true),
	}
	if noColor {
		st.bad = st.bad.Bold(true) // a lost port still stands out
	}
	for _, c := range []string{"6", "5", "3", "4", "2", "1"} {
		st.tag = append(st.tag, fg(c))
	}
	return st
}
