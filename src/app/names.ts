/**
 * Random container names in Docker's style ("adjective_scientist", moby pkg/namesgenerator),
 * from a shorter list. With `retry`, a digit is appended, as Docker does after a collision.
 */
import { randomInt } from 'node:crypto';

const LEFT = ['admiring', 'bold', 'brave', 'calm', 'clever', 'dazzling', 'eager', 'elegant', 'festive', 'focused',
  'gallant', 'gifted', 'happy', 'hopeful', 'jolly', 'keen', 'kind', 'loving', 'modest', 'nifty', 'optimistic',
  'peaceful', 'quirky', 'relaxed', 'serene', 'sharp', 'stoic', 'tender', 'vibrant', 'wizardly', 'youthful', 'zealous'];
const RIGHT = ['archimedes', 'babbage', 'bohr', 'curie', 'darwin', 'dijkstra', 'einstein', 'euler', 'faraday', 'fermi',
  'galileo', 'goldberg', 'hamilton', 'hopper', 'hypatia', 'kepler', 'knuth', 'lamarr', 'lovelace', 'maxwell',
  'meitner', 'newton', 'noether', 'pascal', 'ritchie', 'shannon', 'thompson', 'torvalds', 'turing', 'wozniak'];

export function randomName(retry = false): string {
  const name = `${LEFT[randomInt(LEFT.length)]}_${RIGHT[randomInt(RIGHT.length)]}`;
  return retry ? `${name}${randomInt(10)}` : name;
}
