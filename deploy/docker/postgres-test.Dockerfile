# Postgres from Debian's packages, for `make image-test` where the postgres image cannot be
# pulled: a database "warroom" owned by user "warroom" (password "warroom"), reachable from the
# test's network. For tests only: the password is in the image.
ARG BASE_IMAGE=warroom-base:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql \
 && rm -rf /var/lib/apt/lists/* \
 && ln -s "$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)" /usr/local/lib/pgbin \
 && ln -s "$(ls -d /etc/postgresql/*/main | sort -V | tail -n 1)" /etc/postgresql/current \
 && ln -s "$(ls -d /var/lib/postgresql/*/main | sort -V | tail -n 1)" /var/lib/postgresql/current
USER postgres
RUN echo "host all all 0.0.0.0/0 scram-sha-256" >> /etc/postgresql/current/pg_hba.conf \
 && /usr/local/lib/pgbin/pg_ctl -D /var/lib/postgresql/current \
      -o "-c config_file=/etc/postgresql/current/postgresql.conf" -w start \
 && psql -c "CREATE USER warroom PASSWORD 'warroom'" \
 && createdb -O warroom warroom \
 && /usr/local/lib/pgbin/pg_ctl -D /var/lib/postgresql/current -w stop
EXPOSE 5432
CMD ["/usr/local/lib/pgbin/postgres", "-D", "/var/lib/postgresql/current", \
     "-c", "config_file=/etc/postgresql/current/postgresql.conf", "-c", "listen_addresses=*"]
