-- A session's data fields as one hash field, `j` (see session-doc.ts): a JSON object written a
-- field to a line, '{\n<name>\t:<value>,\n<name>\t:<value>\n}', each <name> as JSON.stringify
-- writes it and each <value> the JSON of its value; a '~' before the brace when a value holds the
-- default codec's tags. JSON.stringify writes no raw newline or tab, so these split it alone.

-- The fields of a document: their names (JSON) in order, and their values by name.
local function readDoc(doc)
  local names, values = {}, {}
  for name, value in string.gmatch(doc, '\n([^\t\n]*)\t:([^\n]*)') do
    -- Every line but the last ends with the comma between fields (a JSON value never does).
    if string.byte(value, -1) == 44 then value = string.sub(value, 1, -2) end
    if values[name] == nil then names[#names + 1] = name end
    values[name] = value
  end
  return names, values
end

-- The document of the fields in `names` that have a value.
local function writeDoc(names, values)
  local lines, tagged = {}, false
  for _, name in ipairs(names) do
    local value = values[name]
    if value then
      lines[#lines + 1] = '\n' .. name .. '\t:' .. value
      tagged = tagged or string.find(value, '"$nrp"', 1, true) ~= nil
    end
  end
  return (tagged and '~{' or '{') .. table.concat(lines, ',') .. '\n}'
end

-- A field's value in the document, from its value as the codec encoded it: the default codec's
-- JSON (`codec` 'json') without the '~' it puts before tagged text; another codec's text as a JSON
-- string.
local function docValue(encoded, codec)
  if codec ~= 'json' then return cjson.encode(encoded) end
  if string.byte(encoded, 1) == 126 then return string.sub(encoded, 2) end
  return encoded
end
