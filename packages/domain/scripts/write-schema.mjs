#!/usr/bin/env node
// Writes schema/study.schema.json from the built package, so editors can point at a file
// (`@llem/domain/study.schema.json`). A test fails when the committed file is stale.
import { writeFileSync } from 'node:fs';
import { studyJsonSchema } from '../dist/index.js';

const target = new URL('../schema/study.schema.json', import.meta.url);
writeFileSync(target, `${JSON.stringify(studyJsonSchema(), null, 2)}\n`);
console.log(`wrote ${target.pathname}`);
