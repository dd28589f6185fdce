# l2rw build. `make` builds the library and the l2rw command, `make test`
# runs the tests (and a sanitized pass of the unit tests), `make bench`
# the benchmarks, `make demo` the quick-start demo.

CC      ?= cc
PREFIX  ?= /usr/local
BUILD   := build
OPT     ?= -O3 -march=native
WARN    := -Wall -Wextra -Wpedantic
CFLAGS  ?= $(OPT)
ALL_CFLAGS = -std=c11 $(WARN) $(CFLAGS) -fopenmp -fPIC -Iinclude $(SRC_INC) $(BLAS_CFLAGS)
# Debian's OpenMP build of OpenBLAS when it is there (scripts/deps.sh says
# why), named by path so that the alternatives system cannot swap in the
# pthreads build; otherwise whatever -lopenblas finds. Recursive (=) so
# that the test runs after scripts/deps.sh has installed it.
MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null)
OMP_BLAS   = $(wildcard /usr/lib/$(MULTIARCH)/openblas-openmp/libopenblas.so)
BLAS_CFLAGS = $(if $(OMP_BLAS),-I/usr/include/$(MULTIARCH)/openblas-openmp)
BLAS_LIBS   = $(if $(OMP_BLAS),-L$(dir $(OMP_BLAS)) -Wl$(comma)-rpath$(comma)$(dir $(OMP_BLAS))) -lopenblas
comma  := ,
LIBS    = $(BLAS_LIBS) -lpng -ljpeg -lz -lm
DEPS_SH = BLAS_CFLAGS='$(BLAS_CFLAGS)' BLAS_LIBS='$(BLAS_LIBS)' sh scripts/deps.sh
# Open MPI: when mpicc is found (`make MPI=0` leaves it out) the l2rw
# command can be one process of an `mpirun -np P l2rw train` job
# (cli/group.c). Recursive (=): `make test` installs Open MPI and then
# builds again. The stamp's name says whether MPI was in, so that its
# arrival or departure rebuilds what depends on it.
MPI       ?= 1
MPICC      = $(if $(filter 1,$(MPI)),$(shell command -v mpicc 2>/dev/null))
MPI_CFLAGS = $(if $(MPICC),-DL2RW_HAVE_MPI $(shell $(MPICC) --showme:compile))
MPI_LIBS   = $(if $(MPICC),$(shell $(MPICC) --showme:link))
MPI_STAMP  = $(BUILD)/.mpi-$(if $(MPICC),on,off)
MPI_TESTS  = $(if $(MPICC),$(BUILD)/tests/mpi_steps)
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

# The library's C sources: src/ (data, loss, optimizers, methods, training),
# src/engine/ (graph, net, layers, the back-end interface) and src/cpu/ (the
# CPU back end). Other back ends' folders (src/cuda/) have their own rules.
SRC_DIRS := src src/engine src/cpu
SRC_INC  := $(SRC_DIRS:%=-I%)
LIB_SRC  := $(sort $(foreach d,$(SRC_DIRS),$(wildcard $(d)/*.c)))
CLI_SRC  := $(sort $(wildcard cli/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c))
LIB_OBJ  := $(LIB_SRC:src/%.c=$(BUILD)/obj/%.o)
SAN_OBJ  := $(LIB_SRC:src/%.c=$(BUILD)/san/%.o)
CLI_OBJ  := $(CLI_SRC:cli/%.c=$(BUILD)/cli/%.o)
TESTS    := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
SAN_TESTS:= $(TEST_SRC:tests/%.c=$(BUILD)/san-tests/%)
VERSION  := $(shell sed -n 's/.*L2RW_VERSION "\(.*\)".*/\1/p' include/l2rw.h)
SO_NAME  := libl2rw.so.$(firstword $(subst ., ,$(VERSION)))
SO_FILE  := libl2rw.so.$(VERSION)
HEADERS  := $(wildcard include/*.h $(SRC_DIRS:%=%/*.h))
DEPS_OK  := $(BUILD)/.deps-ok

# The CUDA back end (src/cuda/): built whenever a CUDA toolkit is found,
# with its table src/cuda/backend_cuda.c (`make CUDA=0` leaves it out, and
# src/cuda/cuda_stub.c's probe then says "l2rw was built without CUDA").
# The toolkit is found by its libraries, not by where nvcc sits: nvcc may
# be a wrapper script in /usr/local/bin whose ../lib has no cuBLAS. The
# first of $(CUDA_HOME), /usr/local/cuda and nvcc's ../ that holds
# libcudart.so and libcublas.so (in lib64, lib or targets/*/lib) wins; a
# toolkit without them gives a CPU-only build and a note, never a failed
# link.
# sm_90 code plus compute_90 PTX (compiled by the driver on newer GPUs);
# --fmad=false so that the kernels do the CPU's float operations (see
# src/cuda/cuda_backend.h). The stamp's name says whether CUDA was in, so
# that switching rebuilds everything (L2RW_HAVE_CUDA changes headers).
CUDA     ?= 1
NVCC_PATH := $(shell command -v nvcc 2>/dev/null)
CUDA_ROOTS := $(CUDA_HOME) /usr/local/cuda $(patsubst %/bin/,%,$(dir $(NVCC_PATH)))
CUDA_LIBDIR ?= $(firstword $(foreach d,$(foreach r,$(CUDA_ROOTS),$(r)/lib64 $(r)/lib $(wildcard $(r)/targets/*/lib)),$(if $(and $(wildcard $(d)/libcudart.so),$(wildcard $(d)/libcublas.so)),$(d))))
CUDA_ROOT := $(firstword $(foreach r,$(CUDA_ROOTS),$(if $(filter $(r)/%,$(CUDA_LIBDIR)),$(r))))
NVCC     ?= $(firstword $(wildcard $(CUDA_ROOT)/bin/nvcc) $(NVCC_PATH))
CUDA_ON  := $(if $(filter 1,$(CUDA)),$(if $(CUDA_LIBDIR),$(NVCC)))
ifeq ($(CUDA)$(CUDA_ON),1)
ifneq ($(NVCC_PATH),)
$(info note: nvcc found but no libcudart.so and libcublas.so under $(sort $(CUDA_ROOTS)): building without the CUDA back end)
endif
endif
NVFLAGS  := -std=c++17 -O3 --fmad=false -gencode arch=compute_90,code=[sm_90,compute_90] -Xcompiler -fPIC,-Wall,-Wextra,-fvisibility=hidden
CUDA_OBJ := $(if $(CUDA_ON),$(patsubst src/%.cu,$(BUILD)/obj/%.o,$(sort $(wildcard src/cuda/*.cu))))
CUDA_C   := $(if $(CUDA_ON),cuda/backend_cuda,cuda/cuda_stub)
CUDA_STAMP := $(BUILD)/.cuda-$(if $(CUDA_ON),on,off)
LIB_OBJ  += $(CUDA_OBJ) $(CUDA_C:%=$(BUILD)/obj/%.o)
SAN_OBJ  += $(CUDA_OBJ) $(CUDA_C:%=$(BUILD)/san/%.o)
HEADERS  += $(wildcard src/cuda/*.h) $(CUDA_STAMP)
ALL_CFLAGS += -Isrc/cuda $(if $(CUDA_ON),-DL2RW_HAVE_CUDA)
LIBS     += $(if $(CUDA_ON),-L$(CUDA_LIBDIR) -Wl$(comma)-rpath$(comma)$(CUDA_LIBDIR) -lcublas -lcudart -lstdc++)

# Keep the sanitized objects: make would delete them as intermediates.
.SECONDARY: $(SAN_OBJ) $(LIB_OBJ) $(CLI_OBJ)

.PHONY: mpi-build
.PHONY: all lib test test-fast test-san bench demo install clean deps fuzz

all: $(BUILD)/libl2rw.a $(BUILD)/libl2rw.so $(BUILD)/l2rw

$(DEPS_OK): scripts/deps.sh
	@mkdir -p $(BUILD)
	@$(DEPS_SH)
	@touch $@

deps:
	@$(DEPS_SH) fashion-mnist gnuplot node

$(BUILD)/obj/%.o: src/%.c $(HEADERS) | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fvisibility=hidden -c $< -o $@

$(BUILD)/san/%.o: src/%.c $(HEADERS) | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -O1 $(SAN) -c $< -o $@

$(BUILD)/cli/%.o: cli/%.c $(HEADERS) $(wildcard cli/*.h) | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Icli -c $< -o $@

$(BUILD)/.mpi-on $(BUILD)/.mpi-off:
	@mkdir -p $(BUILD)
	@rm -f $(BUILD)/.mpi-on $(BUILD)/.mpi-off
	@touch $@

$(BUILD)/cli/group.o: cli/group.c $(HEADERS) $(wildcard cli/*.h) $(MPI_STAMP) | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(MPI_CFLAGS) -Icli -c $< -o $@

$(BUILD)/obj/cuda/%.o: src/cuda/%.cu $(HEADERS) $(wildcard src/cuda/*.cuh) | $(DEPS_OK)
	@mkdir -p $(dir $@)
	$(CUDA_ON) $(NVFLAGS) -DL2RW_HAVE_CUDA -Iinclude -Isrc $(SRC_INC) -Isrc/cuda -c $< -o $@

$(BUILD)/.cuda-on $(BUILD)/.cuda-off:
	@mkdir -p $(BUILD)
	@rm -f $(BUILD)/.cuda-on $(BUILD)/.cuda-off
	@touch $@

$(BUILD)/libl2rw.a: $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

# The shared library: versioned file, soname libl2rw.so.MAJOR, the public
# API only (the public headers' declarations; everything else is hidden).
$(BUILD)/$(SO_FILE): $(LIB_OBJ)
	$(CC) -shared -fopenmp -Wl,-soname,$(SO_NAME) -o $@ $^ $(LIBS)

$(BUILD)/libl2rw.so: $(BUILD)/$(SO_FILE)
	ln -sf $(SO_FILE) $(BUILD)/$(SO_NAME)
	ln -sf $(SO_NAME) $@

$(BUILD)/l2rw: $(CLI_OBJ) $(BUILD)/libl2rw.a
	$(CC) -fopenmp -o $@ $(CLI_OBJ) $(BUILD)/libl2rw.a $(LIBS) $(MPI_LIBS)

# Data-parallel steps against one process (tests/mpi.sh runs it under
# mpirun); built only with MPI.
$(BUILD)/tests/mpi_steps: tests/mpi_steps.c $(wildcard tests/*.h) $(BUILD)/libl2rw.a $(BUILD)/cli/group.o
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(MPI_CFLAGS) -Itests -Icli $< -o $@ $(BUILD)/cli/group.o $(BUILD)/libl2rw.a $(LIBS) $(MPI_LIBS)

$(BUILD)/tests/%: tests/%.c $(wildcard tests/*.h) $(BUILD)/libl2rw.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests $< -o $@ $(BUILD)/libl2rw.a $(LIBS)

$(BUILD)/san-tests/%: tests/%.c $(wildcard tests/*.h) $(SAN_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -O1 $(SAN) -Itests $< -o $@ $(SAN_OBJ) $(LIBS)

# Real-data tests need Fashion-MNIST; plots need gnuplot; the README's C
# programs are built with pkg-config (tests/examples.sh); the ONNX export is
# checked in ONNX Runtime from npm (tests/onnx.sh; skipped without node).
# tests/device_cli.sh: eval, predict and bench with --device (checked = cpu).
# Open MPI (tests/mpi.sh) may be installed here: a second make then builds
# the command with it.
test: all $(TESTS) $(SAN_TESTS)
	@$(DEPS_SH) fashion-mnist gnuplot pkg-config pil mpi
	@$(MAKE) --no-print-directory mpi-build
	@sh scripts/run_tests.sh $(BUILD) $(TESTS) tests/examples.sh tests/library.sh tests/onnx.sh tests/mpi.sh tests/device_cli.sh tests/check_device.sh -- $(SAN_TESTS)

mpi-build: all $(MPI_TESTS)

test-fast: all $(TESTS) $(MPI_TESTS)
	@sh scripts/run_tests.sh $(BUILD) $(TESTS) tests/examples.sh tests/library.sh tests/onnx.sh tests/mpi.sh tests/device_cli.sh tests/check_device.sh --

test-san: $(SAN_TESTS)
	@sh scripts/run_tests.sh $(BUILD) -- $(SAN_TESTS)

bench: all
	@$(DEPS_SH) torch fashion-mnist mpi
	@$(MAKE) --no-print-directory mpi-build
	@sh bench/run.sh $(BUILD)/l2rw
	@sh bench/loop.sh $(BUILD)/l2rw
	@sh bench/mpi.sh $(BUILD)/l2rw

demo: all
	@$(DEPS_SH) fashion-mnist gnuplot
	@sh scripts/demo.sh $(BUILD)/l2rw

# Each reader's libFuzzer target for FUZZ_SECONDS (default 60) seconds.
FUZZ_SECONDS ?= 60
fuzz:
	@$(DEPS_SH) clang
	@sh fuzz/run.sh $(FUZZ_SECONDS)

install: all
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin
	install -m 644 include/*.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(BUILD)/libl2rw.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(BUILD)/$(SO_FILE) $(DESTDIR)$(PREFIX)/lib/
	ln -sf $(SO_FILE) $(DESTDIR)$(PREFIX)/lib/$(SO_NAME)
	ln -sf $(SO_NAME) $(DESTDIR)$(PREFIX)/lib/libl2rw.so
	install -m 755 $(BUILD)/l2rw $(DESTDIR)$(PREFIX)/bin/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' -e 's|@LIBS_PRIVATE@|$(LIBS)|' \
	    l2rw.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/l2rw.pc

clean:
	rm -rf $(BUILD)
