#!/bin/sh
# Builds the release archives, the Linux packages and SHA256SUMS into
# $DIST. Called by `make release`, which passes GO, VERSION, COMMIT, DATE
# and EPOCH (the commit's date, so the same commit gives the same bytes).
#
#   TARGETS   os/arch pairs (default: linux, darwin, windows on amd64, arm64)
#   PACKAGES  Linux packages to build: "deb rpm" (default), "deb", or ""
set -eu

: "${GO:=go}" "${VERSION:=dev}" "${COMMIT:=}" "${DATE:=}" "${DIST:=dist}"
: "${EPOCH:=0}"
: "${TARGETS:=linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64}"
: "${PACKAGES:=deb rpm}"

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
case $DIST in /*) ;; *) DIST=$top/$DIST ;; esac
work=$DIST/.work
rm -rf "$DIST"
mkdir -p "$work"

# Reproducible: no paths of this machine (-trimpath), no VCS stamp that
# depends on the checkout's state (-buildvcs=false: the ldflags carry the
# version), no cgo (the host's C toolchain would enter the binary).
ldflags="-s -w -X main.version=$VERSION -X main.commit=$COMMIT -X main.date=$DATE"
build() { # GOOS GOARCH OUT
	CGO_ENABLED=0 GOOS=$1 GOARCH=$2 "$GO" build -trimpath -buildvcs=false -ldflags "$ldflags" -o "$3" ./cmd/mos
}

# Completions and man pages come from the command tree, so they are made
# by running mos itself, built for this machine.
build "$("$GO" env GOHOSTOS)" "$("$GO" env GOHOSTARCH)" "$work/host-mos"
gen=$work/gen
mkdir -p "$gen/completions" "$gen/man/man1" "$gen/man/man7" "$gen/udev"
"$work/host-mos" completion bash >"$gen/completions/mos.bash"
"$work/host-mos" completion zsh >"$gen/completions/_mos"
"$work/host-mos" completion fish >"$gen/completions/mos.fish"
"$work/host-mos" completion powershell >"$gen/completions/mos.ps1"
# Section 1 per command, section 7 per help topic (mos help TOPIC).
"$work/host-mos" man "$gen/man/man1"
for m in "$gen"/man/man1/*.7; do
	[ -e "$m" ] && mv "$m" "$gen/man/man7/"
done
cp packaging/udev/70-mos-esp.rules "$gen/udev/"

artifacts=""
for t in $TARGETS; do
	os=${t%/*} arch=${t#*/}
	name=mos_${VERSION}_${os}_${arch}
	stage=$work/$name
	exe=mos
	[ "$os" = windows ] && exe=mos.exe
	mkdir -p "$stage"
	build "$os" "$arch" "$stage/$exe"
	cp README.md "$stage/"
	# The project has no licence file yet; ship one as soon as it does.
	[ -f LICENSE ] && cp LICENSE "$stage/"
	cp -R "$gen/completions" "$gen/man" "$stage/"
	[ "$os" = linux ] && cp -R "$gen/udev" "$stage/"
	if [ "$os" = windows ]; then
		"$GO" run ./packaging/archive zip "$DIST/$name.zip" "$stage" "$name" "$EPOCH"
		artifacts="$artifacts $DIST/$name.zip"
	else
		"$GO" run ./packaging/archive tar.gz "$DIST/$name.tar.gz" "$stage" "$name" "$EPOCH"
		artifacts="$artifacts $DIST/$name.tar.gz"
	fi

	[ "$os" = linux ] || continue
	[ -n "$PACKAGES" ] || continue
	# Debian versions must start with a digit; an untagged build is
	# 0.0.0~git<commit date>.<commit>, which sorts before any release.
	case $VERSION in
	v[0-9]*) pkgver=${VERSION#v} ;;
	*) pkgver=0.0.0~git$(date -u -d "@$EPOCH" +%Y%m%d 2>/dev/null || date -u -r "$EPOCH" +%Y%m%d).$(echo "${COMMIT:-unknown}" | cut -c1-12) ;;
	esac
	# Man pages are installed compressed (Debian policy 12.1); gzip -n
	# leaves out the name and time.
	pkgstage=$work/pkg-$arch
	mkdir -p "$pkgstage"
	cp -R "$stage/mos" "$gen/completions" "$gen/udev" "$pkgstage/"
	for sec in 1 7; do
		mkdir -p "$pkgstage/man/man$sec"
		for m in "$gen"/man/man$sec/*.$sec; do
			[ -e "$m" ] || continue
			gzip -9 -n -c "$m" >"$pkgstage/man/man$sec/$(basename "$m").gz"
		done
	done
	for p in $PACKAGES; do
		zsh=/usr/share/zsh/site-functions
		[ "$p" = deb ] && zsh=/usr/share/zsh/vendor-completions
		ZSH_COMPLETIONS=$zsh STAGE=$pkgstage PKG_ARCH=$arch PKG_VERSION=$pkgver \
			SOURCE_DATE_EPOCH=$EPOCH \
			"$GO" tool -modfile=packaging/nfpm/go.mod nfpm package \
			--config packaging/nfpm.yaml --packager "$p" --target "$DIST/"
	done
done
for f in "$DIST"/*.deb "$DIST"/*.rpm; do
	[ -e "$f" ] && artifacts="$artifacts $f"
done
# shellcheck disable=SC2086 # the list is file names without spaces
"$GO" run ./packaging/archive sums "$DIST/SHA256SUMS" $artifacts
rm -rf "$work"
ls -l "$DIST"
