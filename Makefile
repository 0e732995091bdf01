# SPDX-License-Identifier: GPL-2.0-or-later
# Front door.  `make` sets up a fresh Debian machine and builds the patched
# QEMU; `make check` runs every test; `make bench` prints BENCH lines.
# Large state lives in $(QRS_CACHE) (default /var/cache/qemurs), outside the
# clone; QEMU_SRC=/path/to/qemu uses an existing QEMU tree.
# `make install` installs the library for C programs outside QEMU (header,
# libqemurs.a, qemurs.pc) under $(DESTDIR)$(PREFIX); `make uninstall`
# removes exactly those files.  Neither builds QEMU.

SHELL := /bin/bash
export QRS_CACHE ?= /var/cache/qemurs
PREFIX ?= /usr/local
DESTDIR ?=
INSTALL ?= install

.PHONY: all deps qemu lib header install uninstall check bench clean-cache

all: qemu
	@echo "patched QEMU: $(QRS_CACHE)/build-patched/qemu-system-x86_64"

deps:
	@bash scripts/install-deps.sh

lib: deps
	cargo build --release --locked -p capi
	@bash scripts/gen-pc.sh

header: deps
	cargo run --quiet --locked -p gen-header

install: lib
	$(INSTALL) -d "$(DESTDIR)$(PREFIX)/lib/pkgconfig" "$(DESTDIR)$(PREFIX)/include"
	$(INSTALL) -m 644 target/release/libqemurs.a "$(DESTDIR)$(PREFIX)/lib/libqemurs.a"
	$(INSTALL) -m 644 include/qemurs.h "$(DESTDIR)$(PREFIX)/include/qemurs.h"
	bash scripts/gen-pc.sh --prefix "$(PREFIX)" "$(DESTDIR)$(PREFIX)/lib/pkgconfig/qemurs.pc"
	chmod 644 "$(DESTDIR)$(PREFIX)/lib/pkgconfig/qemurs.pc"

uninstall:
	rm -f "$(DESTDIR)$(PREFIX)/lib/libqemurs.a" "$(DESTDIR)$(PREFIX)/include/qemurs.h" \
	      "$(DESTDIR)$(PREFIX)/lib/pkgconfig/qemurs.pc"

qemu: deps lib
	@bash scripts/fetch-qemu.sh
	@bash scripts/build-qemu.sh patched

check: all
	@bash scripts/check.sh

bench: all
	@bash scripts/bench.sh

clean-cache:
	rm -rf $(QRS_CACHE)
