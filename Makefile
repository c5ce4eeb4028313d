# fusionserve developer targets. Run from the repository root inside the project venv.
#
#   make bundles   retrain all four models from configs/ + data (seeded) and re-export the
#                  bundles under exported/ (teachers first; students distil from them), verify
#   make export    re-export the four bundles from existing checkpoints only, then verify
#   make verify    fusionserve verify on every bundle (sha256, graph signature, self-test)
#   make test      the test suite, as CI runs it
#   make lint      ruff + mypy, as CI runs them
#   make image     build the CPU image as fusionserve:cpu (docker if present, else podman on a
#                  bookworm base made with debootstrap; PYTHON_IMAGE= picks another base), print
#                  its build time and size: deploy/image/build.sh

FUSIONSERVE ?= fusionserve
PYTHON ?= python
# Parent of the configs' output_dir (each run writes <name>/best.pt there).
CHECKPOINTS ?= ../artifacts/checkpoints
EXPORTED ?= exported
EXPORT_FLAGS ?=

TEACHERS := medpix-teacher wound-teacher
STUDENTS := medpix-student wound-student
BUNDLES := $(TEACHERS) $(STUDENTS)

.PHONY: bundles checkpoints export verify test lint image \
	$(BUNDLES:%=train-%) $(BUNDLES:%=export-%) train-medpix-student-base

bundles:
	$(MAKE) checkpoints
	$(MAKE) export

checkpoints: $(BUNDLES:%=train-%)

# A student distils from its task set's teacher checkpoint.
$(STUDENTS:%=train-%): train-%-student: train-%-teacher

# The MedPix student has two stages: stage 1 (medpix-student-base) is trained, then exported
# beside its checkpoint; stage 2 starts from that checkpoint and distils that bundle.
train-medpix-student: train-medpix-student-base
train-medpix-student-base: train-medpix-teacher
	$(FUSIONSERVE) train student --config configs/medpix-student-base.yaml --no-progress
	$(FUSIONSERVE) export --checkpoint $(CHECKPOINTS)/medpix-student-base/best.pt \
		--out $(CHECKPOINTS)/medpix-student-base/bundle $(EXPORT_FLAGS)

$(BUNDLES:%=train-%): train-%:
	$(FUSIONSERVE) train $(lastword $(subst -, ,$*)) --config configs/$*.yaml --no-progress

export: $(BUNDLES:%=export-%)
	$(MAKE) verify

$(TEACHERS:%=export-%): export-%:
	$(FUSIONSERVE) export --checkpoint $(CHECKPOINTS)/$*/best.pt --out $(EXPORTED)/$* $(EXPORT_FLAGS)

$(STUDENTS:%=export-%): export-%:
	$(FUSIONSERVE) export --checkpoint $(CHECKPOINTS)/$*/best.pt --out $(EXPORTED)/$* --int8 $(EXPORT_FLAGS)

verify:
	$(FUSIONSERVE) verify $(addprefix $(EXPORTED)/,$(BUNDLES))

test:
	$(PYTHON) -m pytest -q

lint:
	ruff check .
	mypy app models fusionserve

image:
	sh deploy/image/build.sh
