-- A session's data fields as one hash field, `j` (see SessionDataCodec in session-doc.ts): a JSON object written a
-- field to a line, '{\n<name>\t:<value>,\n<name>\t:<value>\n}', each <name> as JSON.stringify
-- writes it and each <value> the JSON of its value; a '~' before the brace when it may hold the
-- default codec's tags. JSON.stringify writes no raw newline or tab, so a field's line is found
-- by its name between them, and changed in place: no JSON parser, no table of the fields.

-- The document with the field `name` set to `value`, or deleted when `value` is nil.
local function spliceDoc(doc, name, value)
  local from = string.find(doc, '\n' .. name .. '\t:', 1, true)
  if not from then
    if not value then return doc end
    -- Added last, before the closing '\n}'; after a comma unless it is the first.
    local body = string.sub(doc, 1, -3)
    local comma = string.byte(body, -1) == 123 and '' or ','
    return body .. comma .. '\n' .. name .. '\t:' .. value .. '\n}'
  end
  -- The next line (another field's, or the closing '\n}'); every line but the last field's ends with a comma.
  local to = string.find(doc, '\n', from + 1, true)
  local last = string.byte(doc, to - 1) ~= 44
  if value then return string.sub(doc, 1, from) .. name .. '\t:' .. value .. (last and '' or ',') .. string.sub(doc, to) end
  local before = string.sub(doc, 1, from - 1)
  -- The last field deleted: the one before it is last now, without its comma.
  if last and string.byte(before, -1) == 44 then before = string.sub(before, 1, -2) end
  return before .. string.sub(doc, to)
end

-- The document marked with '~' when it may hold the default codec's tags (the text '"$nrp"'
-- anywhere: in a name too, which only costs the codec's slower read), unmarked otherwise.
local function markDoc(doc)
  local marked = string.byte(doc, 1) == 126
  local tagged = string.find(doc, '"$nrp"', 1, true) ~= nil
  if marked == tagged then return doc end
  return tagged and '~' .. doc or string.sub(doc, 2)
end

-- A field's value in the document, from its value as the codec encoded it: the default codec's
-- JSON (`codec` 'json') without the '~' it puts before tagged text; another codec's text as a JSON
-- string.
local function docValue(encoded, codec)
  if codec ~= 'json' then return cjson.encode(encoded) end
  if string.byte(encoded, 1) == 126 then return string.sub(encoded, 2) end
  return encoded
end
