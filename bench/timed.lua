-- The timed part of case 1's subjects, the same for each: WARMUP creates,
-- then N timed with os.clock; prints "RESULT n=N cpu_us=<CPU of the N>".
-- create(fields) returns the created record, or nil and an error.
--   dofile(dir .. "/timed.lua")(create, fields, n, warmup)
return function(create, fields, n, warmup)
  for _ = 1, warmup do
    assert(create(fields))
  end
  local c0 = os.clock()
  for _ = 1, n do
    local record, err = create(fields)
    if not record then error(tostring(err)) end
  end
  local cpu = os.clock() - c0
  print(string.format("RESULT n=%d cpu_us=%d", n, math.floor(cpu * 1e6 + 0.5)))
end
