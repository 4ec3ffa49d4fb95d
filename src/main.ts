import 'reflect-metadata';
import { Controller, Get, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
@Controller() class A { @Get('x') x() { return { ok: 1 }; } }
@Module({ controllers: [A] }) export class M {}
async function main() { const app = await NestFactory.create(M); await app.listen(0); console.log('listening', app.getHttpServer().address()); await app.close(); }
void main();
