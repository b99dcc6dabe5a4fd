# Test-only C modules the specs load, built for the Lua named by LUA into
# SPEC_BUILD (default: that Lua's build directory), where the specs'
# package.cpath looks: spec/fork_spec.lua runs `make spec-helpers`.
SPEC_BUILD ?= $(BUILD_DIR)

.PHONY: spec-helpers
spec-helpers: $(SPEC_BUILD)/support/fork.so

$(SPEC_BUILD)/support/%.so: spec/support/%.c
	@mkdir -p $(dir $@)
	$(CC) $(OPT) $(WARN) -fPIC -I$(LUA_INCDIR) -o $@ $< -shared
