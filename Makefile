# SPDX-License-Identifier: GPL-2.0-or-later
# Front door.  `make` sets up a fresh Debian machine and builds the patched
# QEMU; `make check` runs every test; `make bench` prints BENCH lines.
# Large state lives in $(QRS_CACHE) (default /var/cache/qemurs), outside the
# clone; QEMU_SRC=/path/to/qemu uses an existing QEMU tree.

SHELL := /bin/bash
export QRS_CACHE ?= /var/cache/qemurs

.PHONY: all deps qemu lib header check bench clean-cache

all: qemu
	@echo "patched QEMU: $(QRS_CACHE)/build-patched/qemu-system-x86_64"

deps:
	@bash scripts/install-deps.sh

lib: deps
	cargo build --release --locked -p capi
	@bash scripts/gen-pc.sh

header: deps
	cargo run --quiet --locked -p gen-header

qemu: deps lib
	@bash scripts/fetch-qemu.sh
	@bash scripts/build-qemu.sh patched

check: all
	@bash scripts/check.sh

bench: all
	@bash scripts/bench.sh

clean-cache:
	rm -rf $(QRS_CACHE)
