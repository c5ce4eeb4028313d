# fusionserve developer targets. Run from the repository root inside the project venv.
#
#   make bundles   retrain all four models from configs/ + data (seeded) and re-export the
#                  bundles under exported/ (teachers first: the MedPix student distils from the
#                  exported MedPix teacher; students from ImageNet image weights and the
#                  committed text branches), verify
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
	$(BUNDLES:%=train-%) $(BUNDLES:%=export-%)

bundles:
	$(MAKE) $(TEACHERS:%=train-%)
	$(MAKE) $(TEACHERS:%=export-%)
	$(MAKE) $(STUDENTS:%=train-%)
	$(MAKE) $(STUDENTS:%=export-%)
	$(MAKE) verify

checkpoints: $(BUNDLES:%=train-%)

# The MedPix student distils from the exported MedPix teacher (configs/medpix-student.yaml:
# distill, the fixed path exported/medpix-teacher whatever EXPORTED is), so `bundles` exports
# the teachers before the students train; `checkpoints` trains all four at once, its MedPix
# student distilling from the teacher bundle already under exported/. The wound student trains
# on the labels (distilling its image-only view from its teacher did not move its image-only
# type: docs/evaluation/levers.md).
# Each student starts from the previous student's text branch, committed as
# configs/pretrained/<student>-text.pt (see configs/previous/README.md).

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
