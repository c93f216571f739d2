# rdrbd top-level Makefile.
#   make        build the guest kernel (cached), drbd.ko and the userspace tools
#   make demo   boot guests and show /dev/drbd0 in use
#   make check  run every host and guest test; ends with "N passed, N failed"
#   make bench  link, raw disk, rdrbd and the C driver: writes, reads, resync
# Artifacts: build/out/{bzImage,drbd.ko,bin/}, kernel build tree build/kernel;
# the non-debug twin kernel (tests/README.md, "Which kernel") and drbd.ko built
# for it: build/out/{bzImage-fast,fast/drbd.ko}, build/kernel-fast.

SHELL := /bin/bash
ROOT := $(CURDIR)
KDIR := $(ROOT)/build/kernel
KDIR_FAST := $(ROOT)/build/kernel-fast
# kbuild writes objects next to the sources (6.12 has no MO=): the module for
# the fast kernel is built in a copy of its sources.
FAST_SRC := $(ROOT)/build/module-fast
# What kbuild writes beside the sources: neither copied nor deleted there.
KBUILD_OUTPUTS := $(addprefix --exclude=,'*.o' '*.ko' '*.mod' '*.mod.c' '.*.cmd' '.*.d' '*.rmeta' modules.order Module.symvers)
OUT := $(ROOT)/build/out
KMAKE_VARS := LLVM=1 RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc BINDGEN=$(HOME)/.cargo/bin/bindgen HOSTRUSTC=/usr/bin/rustc
TOOLS := drbdsetup drbdmeta drbdadm drbd-nl-fuzz drbd-hostile-peer devsum

.PHONY: all deps kernel module tools check demo bench clean

all: module tools

deps:
	@scripts/install-deps.sh

kernel: deps
	@scripts/build-kernel.sh debug
	@scripts/build-kernel.sh fast

# The two builds at once: each is one rustc, on one core.
module: kernel
	python3 scripts/check-shim.py
	@mkdir -p $(OUT)/fast $(FAST_SRC)
	rsync -a --delete $(KBUILD_OUTPUTS) Kbuild drivers $(FAST_SRC)/
	rsync -a --delete include/src $(FAST_SRC)/include/
	$(MAKE) -C $(KDIR_FAST) M=$(FAST_SRC) $(KMAKE_VARS) modules > $(ROOT)/build/module-fast.log 2>&1 & fast=$$!; \
	$(MAKE) -C $(KDIR) M=$(ROOT) $(KMAKE_VARS) modules; debug=$$?; \
	wait $$fast; fast=$$?; cat $(ROOT)/build/module-fast.log; [ $$debug = 0 ] && [ $$fast = 0 ]
	cp drivers/block/drbd/drbd.ko $(OUT)/drbd.ko
	cp $(FAST_SRC)/drivers/block/drbd/drbd.ko $(OUT)/fast/drbd.ko

tools: deps
	cd userspace && cargo build --release --locked $(addprefix -p ,$(TOOLS))
	@mkdir -p $(OUT)/bin
	for t in $(TOOLS); do cp userspace/target/release/$$t $(OUT)/bin/; done

check: all
	@tests/run-tests.sh '$(TESTS)'

demo: all
	@scripts/demo.sh

bench: all
	@scripts/bench.sh

clean:
	-$(MAKE) -C $(KDIR) M=$(ROOT) $(KMAKE_VARS) clean
	rm -rf $(FAST_SRC)
	rm -rf build/out userspace/target include/target
