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

// newStyles builds the styles for a colour profile; termenv.Ascii (what
// NO_COLOR selects) leaves only reverse video and bold, which are not
// colours.
func newStyles(profile termenv.Profile) styles {
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(profile)
	s := r.NewStyle
	st := styles{
		level: map[Level]lipgloss.Style{
			LevelError: s().Foreground(lipgloss.Color("9")),
			LevelWarn:  s().Foreground(lipgloss.Color("11")),
			LevelInfo:  s().Foreground(lipgloss.Color("10")),
			LevelDebug: s().Foreground(lipgloss.Color("8")),
			LevelBoot:  s().Foreground(lipgloss.Color("14")),
		},
		dim:     s().Foreground(lipgloss.Color("8")),
		match:   s().Reverse(true),
		current: s().Reverse(true).Bold(true),
		annot:   s().Foreground(lipgloss.Color("13")),
		rpc:     s().Foreground(lipgloss.Color("12")),
		bar:     s().Reverse(true),
		ok:      s().Reverse(true).Foreground(lipgloss.Color("2")),
		warn:    s().Reverse(true).Foreground(lipgloss.Color("3")),
		bad:     s().Reverse(true).Foreground(lipgloss.Color("1")),
		help:    s().Border(lipgloss.RoundedBorder()).Padding(0, 1),
		helpKey: s().Bold(true),
	}
	for _, c := range []string{"6", "5", "3", "4", "2", "1"} {
		st.tag = append(st.tag, s().Foreground(lipgloss.Color(c)))
	}
	return st
}
