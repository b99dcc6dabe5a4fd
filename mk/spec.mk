# Test-only C modules the specs load, built for the Lua named by LUA into
# its build directory (spec/fork_spec.lua runs `make spec-helpers`).
SPEC_HELPERS = $(BUILD_DIR)/support/fork.so

.PHONY: spec-helpers
spec-helpers: $(SPEC_HELPERS)

$(BUILD_DIR)/support/%.so: spec/support/%.c
	@mkdir -p $(dir $@)
	$(CC) $(OPT) $(WARN) -fPIC -I$(LUA_INCDIR) -o $@ $< -shared
