import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, DeleteObjectCommand } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { platform, s3, unique } from './helpers.ts';

describe('S3 server', () => {
  it('puts, gets, lists and deletes objects in the platform bucket', async () => {
    const client = s3();
    const { bucket } = platform().s3;
    const prefix = `${unique('it')}/`;
    const body = randomBytes(256 * 1024);
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}a.bin`, Body: body }));
    await client.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: `${prefix}b.json`,
        Body: '{"x":1}',
        ContentType: 'application/json',
      }),
    );
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: `${prefix}a.bin` }));
    expect(Buffer.from(await got.Body!.transformToByteArray())).toEqual(body);
    const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
    expect(listed.Contents?.map((o) => [o.Key, o.Size])).toEqual([
      [`${prefix}a.bin`, body.length],
      [`${prefix}b.json`, 7],
    ]);
    await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: `${prefix}a.bin` }));
    const after = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
    expect(after.Contents?.map((o) => o.Key)).toEqual([`${prefix}b.json`]);
    await expect(client.send(new GetObjectCommand({ Bucket: bucket, Key: `${prefix}a.bin` }))).rejects.toMatchObject({
      name: 'NoSuchKey',
    });
  });
});
